"""A real sweep on a tiny BERT: three trials (one pruned), a run per trial on shared data, validation-only objective,
reports and best.yaml, and a second call that resumes the study from its SQLite storage."""
from __future__ import annotations

import argparse
import json

import optuna
import pytest
import yaml

from ainative.core import RunDir
from ainative.sweep import SweepConfig, add_sweep_command, sweep
from ainative.training import TrainingConfig


@pytest.fixture(scope="module")
def swept(sweep_space, tmp_path_factory):
    "The first call of the sweep: three trials in a fresh run directory."
    run_dir = tmp_path_factory.mktemp("sweep") / "run"
    return sweep(SweepConfig(space=str(sweep_space), run_dir=str(run_dir)))


def trial_metrics(trial) -> dict:
    return json.loads(RunDir.create(trial.user_attrs["run_dir"]).reports.joinpath("metrics.json").read_text())


def test_three_trials_one_pruned_each_in_its_own_run_on_shared_data(swept):
    states = [trial.state.name for trial in swept.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]  # learning_rate 1e-6 learns nothing
    assert list(swept.study.trials[2].intermediate_values) == [1, 2]  # pruned on its validation accuracy at epoch 2
    for trial in swept.study.trials:
        run = RunDir.create(trial.user_attrs["run_dir"])
        assert run.data.resolve() == swept.run.data.resolve() and (run.model / "config.json").exists()
    assert len(list(swept.run.path.glob("trials/*"))) == 3


def test_the_objective_is_the_validation_score_never_the_test_score(swept):
    complete = [trial for trial in swept.study.trials if trial.state.name == "COMPLETE"]
    for trial in complete:
        metrics = trial_metrics(trial)
        assert trial.value == metrics["validation"]["accuracy"]
    best = trial_metrics(swept.study.best_trial)
    # the test split is labelled against its keywords: had it been read, the best value could not be this high
    assert swept.study.best_value > 0.5 and best["test"]["accuracy"] < swept.study.best_value - 0.3


def test_reports_and_best_yaml_round_trip_into_the_training_config(swept):
    reports = swept.reports
    assert {"table_csv", "table_json", "history_plot", "importance_plot", "best_yaml"} <= set(reports)
    assert len(json.loads(reports["table_json"].read_text())) == 3
    assert reports["table_csv"].read_text().count("PRUNED") == 1
    best = yaml.safe_load(reports["best_yaml"].read_text())
    config = TrainingConfig.from_params(best)
    assert config.learning_rate == swept.study.best_params["learning_rate"]
    assert (config.epochs, config.batch_size, config.baseline) == (4.0, 8, False)


def test_the_pipeline_gives_best_yaml_to_the_training_stage(swept):
    "`ainative pipeline --params best.yaml` reads the file and hands every entry to the training notebook."
    from ainative.cli import read_params_file
    from ainative.pipeline import stage_parameters
    training = stage_parameters("full", read_params_file(swept.reports["best_yaml"]), ["training"])["training"]
    assert training["learning_rate"] == swept.study.best_params["learning_rate"] and training["batch_size"] == 8


def test_a_second_call_resumes_the_study_from_its_storage(swept, sweep_space, capsys):
    manifest = swept.run.data / "manifest.json"
    prepared = manifest.stat().st_mtime_ns
    first = [(trial.number, trial.params) for trial in swept.study.trials]
    parser = argparse.ArgumentParser()
    add_sweep_command(parser.add_subparsers())
    args = parser.parse_args(["sweep", str(sweep_space), "--run-dir", str(swept.run.path), "--n-trials", "1"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.rindex('{\n  "run_dir"'):])  # the Trainer prints its own dicts before
    assert summary["trials"] == 4 and summary["run_dir"] == str(swept.run.path)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{swept.run.path / 'study.sqlite'}")
    assert [(trial.number, trial.params) for trial in study.trials[:3]] == first  # kept, not re-run
    assert study.trials[3].params["learning_rate"] not in (1e-2, 1e-6, 5e-3)  # the enqueued trials are not repeated
    assert manifest.stat().st_mtime_ns == prepared  # the data was prepared once
    assert (swept.run.path / "trials" / "trial-0003" / "reports" / "metrics.json").exists()


def test_two_processes_share_one_study_and_one_data_preparation(sweep_space, tmp_path):
    "Two workers started together on one run directory: each adds a trial to the same study; the data is prepared once."
    import os
    import subprocess
    import sys
    code = ("import sys\nfrom ainative.sweep import SweepConfig, sweep\n"
            "sweep(SweepConfig(space=sys.argv[1], run_dir=sys.argv[2], n_trials=1))\n")
    run_dir = tmp_path / "shared"
    workers = [subprocess.Popen([sys.executable, "-c", code, str(sweep_space), str(run_dir)], env=os.environ,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [worker.communicate(timeout=300)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.sqlite'}")
    finished = [trial for trial in study.trials if trial.state.is_finished()]
    assert sorted(trial.number for trial in finished) == [0, 1]
    assert {trial.params["learning_rate"] for trial in finished} == {1e-2, 5e-3}  # each took another enqueued trial
    assert sum("data data-" in error for error in errors) == 1  # one worker prepared the data, the other found it
