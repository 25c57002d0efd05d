"""benchmarks/bench_predict.py runs end to end at a small size: `ainative predict` and `/predict/batch` of a real server
on the same texts, the labels compared, the report written. It measures nothing worth quoting; it keeps the script working."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ainative.data import shipped_dataset_path

REPO = Path(__file__).resolve().parents[2]


def test_the_benchmark_scores_a_file_and_the_same_texts_over_http(demo_folder, tmp_path):
    out = tmp_path / "bench"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_predict.py"), "--registry-dir", str(demo_folder / "registry"),
               "--texts", str(shipped_dataset_path()), "--rows", "320", "--out", str(out)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AINATIVE_") or k.endswith("_DIR")}
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "ainative predict:" in finished.stdout and "/predict/batch over HTTP:" in finished.stdout
    report = json.loads((out / "bench_predict.json").read_text())
    assert report["rows"] == report["predict"]["summary"]["rows"] == report["server"]["texts"] == 320
    assert report["same_labels"] == 1.0  # one connection, requests of whole server batches: the server's answers exactly
    assert report["predict"]["peak_rss_mb"] > 0 and report["server"]["texts_per_second"] > 0
    assert report["predict"]["summary"]["model_version"] == report["server"]["version"]
    assert not list((demo_folder / "registry").rglob("monitor.sqlite*")), "the benchmark wrote beside the registry"
