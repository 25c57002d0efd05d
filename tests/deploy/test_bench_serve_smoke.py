"""benchmarks/bench_serve.py runs end to end at its shortest settings and reports request logging on vs off side by side.

It measures nothing worth quoting (a second per phase on a shared machine): it checks that the script runs, serves from
a copy of the registry made through the Registry API, and prints and writes the on/off comparison."""
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
               "--duration", "1", "--warmup", "0", "--rates", "20", *closed, "--skip-baselines", "--skip-reload", "--no-plot",
               "--out", str(out)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AINATIVE_") or k.endswith("_DIR")}
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=280)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    printed = finished.stdout
    assert "request log (same load)" in printed and "ainative, log on" in printed and "ainative, log off" in printed, printed
    assert ("request logging: closed-loop /predict throughput on/off" in printed) if closed[0] == "--concurrency" else ("no closed-loop pair" in printed), printed

    report = json.loads((out / "bench_serve.json").read_text())
    pairs = {(pair["kind"], pair["load"]): pair for pair in report["logging"]}
    assert ("open", "20/s") in pairs and pairs[("open", "20/s")]["rps_ratio"] > 0
    assert {phase["phase"] for phase in report["phases"]} >= {"ainative open 20/s", "ainative log-off open 20/s"}
    rows = report["request_log_rows"]
    assert rows["ainative"]["written"] >= 20 and rows["ainative log-off"] is None  # logging really was on, then really off
    assert report["server_settings"]["config"]["request_log"] is True
    assert (out / "server.log").is_file() and (out / "server-log-off.log").is_file()
