"""`ainative distill` as a user runs it: a student run from a teacher run, a JSON summary on stdout (the Trainer's logs
on stderr), the teacher's data by default, and the printed next command continuing the pipeline on the student."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ainative.cli import main
from ainative.pipeline import SMOKE_MODEL_NAME

AINATIVE = str(Path(sys.executable).parent / "ainative")
QUICK = ["-p", "epochs=2", "-p", "batch_size=8", "-p", "max_length=16", "-p", "learning_rate=1e-2", "-p", "logging_steps=1"]


@pytest.fixture(scope="module")
def student(teacher_run, module_tmp_path):
    "The summary `ainative distill <teacher run>` printed, its stderr, and the student's run directory."
    run_dir = module_tmp_path / "student"
    result = subprocess.run([AINATIVE, "distill", str(teacher_run), "--run-dir", str(run_dir), "-p", "ffn_units=48", "-p", "augment_copies=1", *QUICK],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr, run_dir


def test_stdout_is_the_summary_alone_and_the_trainer_logs_go_to_stderr(student):
    summary, stderr, run_dir = student
    assert summary["run_dir"] == str(run_dir) and summary["student"] == "pruned" and summary["layers"] == 2
    assert summary["ffn_units"] == 48  # narrowed from the teacher's 64
    assert summary["augment_copies"] == 1 and 0 <= summary["teacher_copies_accuracy"] <= 1 and summary["baseline_teacher_weight"] == 0
    assert summary["teachers"] == 1 and 0 <= summary["test_accuracy"] <= 1 and summary["parameters"] > 0
    assert "'loss'" in stderr or "loss" in stderr  # logging_steps=1: the Trainer logged, and not onto stdout


def test_the_student_takes_the_teacher_runs_data_without_data_from(student, teacher_run):
    _, _, run_dir = student
    teacher_manifest = json.loads((teacher_run / "data" / "manifest.json").read_text())
    assert json.loads((run_dir / "data" / "manifest.json").read_text())["version"] == teacher_manifest["version"]
    assert json.loads((run_dir / "params.json").read_text())["distillation"]["teachers"] == [str(teacher_run)]


def test_the_printed_next_command_registers_and_optimises_the_student(student, module_tmp_path):
    summary, _, run_dir = student
    registry = module_tmp_path / "registry"
    command = summary["next"].split()
    assert command[:2] == ["ainative", "pipeline"] and command[-2:] == ["--from", "registry"]
    result = subprocess.run([AINATIVE, *command[1:], "--to", "optimization", "-p", "bench_seconds=0.05", "-p", "max_int8_drop=1"],
                            capture_output=True, text=True, timeout=1200, env={**os.environ, "AINATIVE_REGISTRY_DIR": str(registry)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "student: 2 layers of 48 feed-forward units" in result.stdout and "distilled from 1 teacher(s)" in result.stdout  # the pipeline's summary
    aliases = json.loads((registry / SMOKE_MODEL_NAME / "aliases.json").read_text())
    version = registry / SMOKE_MODEL_NAME / aliases["production"]
    served = json.loads((version / "model" / "config.json").read_text())
    assert served["num_hidden_layers"] == 2 and served["intermediate_size"] == 48  # the narrow student is served
    assert (run_dir / "onnx" / "model.int8.onnx").is_file()


def test_a_missing_teacher_is_refused_before_a_run_is_created(tmp_path, capsys):
    assert main(["distill", str(tmp_path / "no-such-run"), "--run-dir", str(tmp_path / "student")]) == 1
    err = capsys.readouterr().err
    assert "No model" in err and "fix:" in err and not (tmp_path / "student").exists()


def test_profile_parameters_apply_and_p_overrides_them(teacher_run, tmp_path):
    from ainative.cli import build_parser, distill_params
    args = build_parser().parse_args(["distill", str(teacher_run), "--profile", "full", "-p", "epochs=2", "-p", "keep_layers=0,3"])
    params = distill_params(args)
    assert params["epochs"] == "2" and params["learning_rate"] == 2e-4 and params["keep_layers"] == "0,3"
    assert params["teachers"] == (str(teacher_run),) and "run_dir" not in params
