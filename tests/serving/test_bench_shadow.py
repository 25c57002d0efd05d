"""benchmarks/bench_serve.py --shadow-compare runs end to end at its shortest settings: a server whose challenger
shadows the traffic is alternated with the plain one, and the shadow on/off comparison is printed and written.

It measures nothing worth quoting (a second per phase on a shared machine); it checks the wiring: the shadow server's
challenger really scored the traffic, the rounds alternate, and the ratios have their median and spread."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_benchmark_compares_shadow_on_and_off(demo_folder, tmp_path):
    out = tmp_path / "bench"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_serve.py"), "--registry-dir", str(demo_folder / "registry"),
               "--duration", "1", "--warmup", "0", "--rates", "20", "--skip-closed", "--logging-repeats", "2", "--skip-baselines",
               "--skip-reload", "--skip-logging-compare", "--shadow-compare", "--shadow-share", "1", "--no-plot", "--out", str(out)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AINATIVE_") or k.endswith("_DIR")}
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=280)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    printed = finished.stdout
    assert "shadow 1 (same load)" in printed and "ainative, shadow on" in printed and "ainative, shadow off" in printed, printed
    assert "shadow: /predict throughput on/off" in printed, printed

    report = json.loads((out / "bench_serve.json").read_text())
    order = [phase["phase"] for phase in report["phases"] if phase["kind"] == "open"]
    assert order == ["ainative open 20/s #1", "ainative shadow open 20/s #1", "ainative shadow open 20/s #2", "ainative open 20/s #2"]
    pair = {(p["kind"], p["load"]): p for p in report["shadow"]}[("open", "20/s")]
    assert pair["rounds"] == 2 and pair["rps_ratio_range"][0] <= pair["rps_ratio"] <= pair["rps_ratio_range"][1]
    assert report["shadow_counts"]["scored"] >= 20  # the challenger really shadowed the measured traffic
    assert "logging" not in report or report["logging"] == []
    assert (out / "server-shadow.log").is_file()
