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
    assert "L2 student int8 / L4 int8 throughput at batch 32 by length" in result.stdout
    report = json.loads(out.read_text())
    assert report["trained"] and report["keep_layers"] == [1, 3] and len(report["ratios"]) == 2
    assert report["ratio_median"] > 0 and set(report["accuracy"]) == {"L4 int8", "L2 student int8"}


def test_bench_student_measures_trained_students_against_the_teacher_and_plots(teacher_run, tmp_path):
    "With --student (repeatable), each distilled run is measured in the same rounds as the teacher; --plot draws them."
    from ainative.distill import DistillationConfig, distill_model
    quick = {"epochs": 1, "batch_size": 8, "max_length": 16, "learning_rate": 1e-2, "logging_steps": 1000}
    students = [distill_model(DistillationConfig(run_dir=str(tmp_path / name), teachers=(str(teacher_run),), keep_layers=keep, **quick)).run.path
                for name, keep in (("l2", (1, 3)), ("l1", (3,)))]
    out, plot = tmp_path / "bench.json", tmp_path / "tradeoff.png"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_student.py"), "--teacher", str(teacher_run),
                             "--student", str(students[0]), "--student", str(students[1] / "model"),
                             "--seconds", "0.05", "--rounds", "2", "--json", str(out), "--plot", str(plot), "--goal-accuracy", "0.9"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert list(report["accuracy"]) == ["L4 int8", "L2 l2 int8", "L1 l1 int8"]
    assert set(report["ratios_by_student"]) == {"L2 l2 int8", "L1 l1 int8"} and all(len(r) == 2 for r in report["ratios_by_student"].values())
    assert "L1 l1 int8 / L4 int8 throughput at batch 32 by length" in result.stdout
    assert plot.stat().st_size > 10_000
