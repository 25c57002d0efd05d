"""benchmarks/bench_serve.py runs end to end at its shortest settings and reports request logging on vs off side by side.

It measures nothing worth quoting (a second per phase on a shared machine): it checks that the script runs, serves from
a copy of the registry made through the Registry API, alternates the two servers round by round, and prints and writes
the on/off comparison with its median and spread."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = "intent-classifier"


@pytest.mark.timeout(300)
def test_the_benchmark_compares_request_logging_on_and_off(deploy_demo, tmp_path):
    out = tmp_path / "bench"
    closed = ["--concurrency", "2"] if shutil.which("wrk") else ["--skip-closed"]  # wrk drives the closed loop, where it is installed
    command = [sys.executable, str(REPO / "benchmarks" / "bench_serve.py"), "--registry-dir", str(deploy_demo / "registry"),
               "--duration", "1", "--warmup", "0", "--rates", "20", *closed, "--logging-repeats", "2", "--skip-baselines", "--skip-reload", "--no-plot",
               "--out", str(out)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AINATIVE_") or k.endswith("_DIR")}
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=280)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    printed = finished.stdout
    assert "request log (same load)" in printed and "ainative, log on" in printed and "ainative, log off" in printed, printed
    assert ("request logging: closed-loop /predict throughput on/off" in printed) if closed[0] == "--concurrency" else ("no closed-loop pair" in printed), printed

    report = json.loads((out / "bench_serve.json").read_text())
    pairs = {(pair["kind"], pair["load"]): pair for pair in report["logging"]}
    open_pair = pairs[("open", "20/s")]
    assert open_pair["rounds"] == 2 and len(open_pair["rps_ratios"]) == 2 and open_pair["rps_ratio"] > 0
    assert open_pair["rps_ratio_range"][0] <= open_pair["rps_ratio"] <= open_pair["rps_ratio_range"][1]
    order = [phase["phase"] for phase in report["phases"] if phase["kind"] == "open"]
    assert order == ["ainative open 20/s #1", "ainative log-off open 20/s #1", "ainative log-off open 20/s #2", "ainative open 20/s #2"]
    assert report["copied_as"] == "v0001"  # registered afresh in the copy, through the Registry API
    rows = report["request_log_rows"]
    assert rows["ainative"]["written"] >= 20 and rows["ainative log-off"] is None  # logging really was on, then really off
    assert report["server_settings"]["config"]["request_log"] is True
    assert (out / "server.log").is_file() and (out / "server-log-off.log").is_file()
