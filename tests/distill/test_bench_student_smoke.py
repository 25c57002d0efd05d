"benchmarks/bench_student.py runs end to end on a tiny teacher and prints the CPU model, both variants and the ratio."
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_student_prints_cpu_variants_and_ratio(teacher_run, tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_student.py"), "--teacher", str(teacher_run),
                             "--seconds", "0.05", "--rounds", "2", "--json", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CPU: " in result.stdout and "L4 int8" in result.stdout and "L2 student int8" in result.stdout
    assert "student / teacher throughput at batch 32 by length" in result.stdout
    report = json.loads(out.read_text())
    assert report["trained"] and report["keep_layers"] == [1, 3] and len(report["ratios"]) == 2
    assert report["ratio_median"] > 0 and set(report["accuracy"]) == {"L4 int8", "L2 student int8"}
