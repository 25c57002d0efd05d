"""Bad sweep files fail before any training, with a message that says what is wrong and how to fix it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ainative.core import ConfigError
from ainative.sweep import parse_sweep_spec, read_sweep_spec
from ainative.training import TrainingConfig

GOOD = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}


def error_of(tmp_path, values) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_sweep_spec(path)
    assert str(path) in caught.value.message  # where
    return caught.value.message


def test_unknown_parameter_lists_the_training_fields(tmp_path):
    message = error_of(tmp_path, {"parameters": {"learnig_rate": GOOD["learning_rate"]}})
    assert "'learnig_rate' is not a parameter of the training stage" in message
    assert all(field.name in message for field in dataclasses.fields(TrainingConfig) if field.name != "run_dir")


@pytest.mark.parametrize("parameters, expected", [
    ({"epochs": {"type": "float", "low": 6, "high": 2}}, "low=6.0 above high=2.0"),
    ({"epochs": {"type": "normal", "low": 1, "high": 2}}, "Unknown type 'normal'"),
    ({"learning_rate": {"type": "float", "low": 0, "high": 1e-3, "log": True}}, "low must be positive"),
    ({"batch_size": {"type": "int", "low": 8}}, "needs both low and high"),
    ({"scheduler": {"type": "categorical", "choices": ["linear", "step"]}}, "is not one of"),
    ({"scheduler": {"type": "categorical"}}, "no list of choices"),
    ({"epochs": {"type": "int", "low": 1, "high": 3, "lo": 2}}, "Unknown key(s) ['lo']"),
    ({"run_dir": {"type": "categorical", "choices": ["a"]}}, "not a parameter of the training stage"),
])
def test_bad_parameter_ranges(tmp_path, parameters, expected):
    assert expected in error_of(tmp_path, {"parameters": parameters})


@pytest.mark.parametrize("values, expected", [
    ({"trials": 3, "parameters": GOOD}, "Unknown key(s) ['trials']"),
    ({"n_trials": 3}, "needs a mapping 'parameters'"),
    ({"fixed": {"learning_rate": 1e-4}, "parameters": GOOD}, "both fixed and searched"),
    ({"fixed": {"epoch": 2}, "parameters": GOOD}, "'epoch' is not a parameter"),
    ({"data": {"datasets": "banking77"}, "parameters": GOOD}, "Unknown parameter(s) ['datasets'] for DataConfig"),
    ({"metric": "loss", "parameters": GOOD}, "use accuracy or macro_f1"),
    ("parameters: [unclosed", "is not valid YAML"),
])
def test_bad_sweep_files(tmp_path, values, expected):
    assert expected in error_of(tmp_path, values)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="No sweep file"):
        read_sweep_spec(tmp_path / "nowhere.yaml")


def test_good_file_converts_values_to_the_fields_types():
    spec = parse_sweep_spec({"n_trials": 2, "fixed": {"epochs": "3", "baseline": "false"},
                             "parameters": {**GOOD, "batch_size": {"type": "categorical", "choices": ["16", 32]}}})
    assert spec.fixed == {"epochs": 3.0, "baseline": False}
    assert spec.parameters["batch_size"].choices == (16, 32)
    assert (spec.n_trials, spec.metric, spec.timeout) == (2, "accuracy", None)


def test_the_example_banking77_sweep_is_valid():
    spec = read_sweep_spec(Path(__file__).parents[2] / "sweeps" / "banking77.yaml")
    assert spec.data == {"dataset": "banking77"} and "learning_rate" in spec.parameters
    for trial in spec.enqueue:  # the enqueued starting points lie in the searched ranges
        for name, value in trial.items():
            parameter = spec.parameters[name]
            assert value in parameter.choices if parameter.type == "categorical" else parameter.low <= value <= parameter.high


def test_the_command_line_builds_the_sweep_parser_without_the_heavy_libraries():
    "`ainative` imports this module to build its parser: that must not pull in torch, pandas or optuna."
    import subprocess
    import sys
    code = ("import argparse, sys\nimport ainative.sweep as sweep\n"
            "parser = argparse.ArgumentParser()\nsweep.add_sweep_command(parser.add_subparsers())\n"
            "args = parser.parse_args(['sweep', 'space.yaml', '--n-trials', '2'])\n"
            "assert args.handler is sweep.sweep_command and args.n_trials == 2\n"
            "heavy = sorted({'pandas', 'torch', 'transformers', 'optuna', 'sklearn'} & set(sys.modules))\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
