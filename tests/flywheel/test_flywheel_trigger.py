"""When a turn starts: new feedback since the last turn, or drift with new feedback; and the commands that check it and
run a turn (their parsers, their output, their errors), on a real registry and request log."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest

from ainative.core import AinativeError
from ainative.demo import DEMO_LABELS, make_demo_run
from ainative.flywheel import (FlywheelConfig, add_flywheel_command, add_retrain_command, check_trigger, flywheel_command,
                               retrain_command)
from ainative.monitor import RequestStore, attach_reference, default_database_url, reference_profile, request_row
from ainative.registry import Registry

NAME = "intent-classifier"


@pytest.fixture
def served(tmp_path):
    "A registry with a demo production version and its request log."
    registry = Registry(tmp_path / "registry")
    version = registry.register(make_demo_run(tmp_path / "run").path)
    registry.promote(NAME, version, "production")
    store = RequestStore(default_database_url(registry.root, NAME))
    yield registry, version, store
    store.close()


def config(registry: Registry, **fields) -> FlywheelConfig:
    return FlywheelConfig(registry_dir=str(registry.root), **fields)


def free_feedback(store: RequestStore, count: int, start: int = 0):
    store.add_feedback([{"text": f"my voucher {start + i} was refused", "label": "refund"} for i in range(count)], DEMO_LABELS)


def test_enough_new_feedback_starts_a_turn(served):
    registry, version, store = served
    assert check_trigger(config(registry, min_new_feedback=5)) == {
        "turn": False, "reasons": [], "champion": version, "new_feedback": 0, "since": None, "drift": None}
    free_feedback(store, 4)
    assert not check_trigger(config(registry, min_new_feedback=5))["turn"]
    free_feedback(store, 1, start=4)
    trigger = check_trigger(config(registry, min_new_feedback=5))
    assert trigger["turn"] and trigger["reasons"] == ["5 new feedback rows since the last turn (a turn starts at 5)"]


def test_drift_starts_a_turn_only_with_something_new_to_learn(served):
    registry, version, store = served
    rng = np.random.default_rng(0)
    uniform = rng.dirichlet(np.ones(len(DEMO_LABELS)), size=300)
    attach_reference(registry, NAME, version, reference_profile(list(DEMO_LABELS), uniform, [20] * 300))
    now = time.time()
    store.write_requests([request_row(f"r{i}", 0, {"intent": "refund", "confidence": 0.99, "model_version": version, "top_k": []},
                                      "refund refund refund refund refund refund", 0.01, at=now - 100 + i * 0.1) for i in range(200)])
    quiet = check_trigger(config(registry))
    assert quiet["drift"]["status"] == "alert" and not quiet["turn"], "drift without new feedback starts nothing"
    free_feedback(store, 1)
    trigger = check_trigger(config(registry))
    assert trigger["turn"] and trigger["reasons"][0].startswith("drift alert with 1 new feedback rows")
    assert not check_trigger(config(registry, drift_trigger=False))["turn"]


def parse(*arguments: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ainative")
    commands = parser.add_subparsers(dest="command", required=True)
    add_retrain_command(commands)
    add_flywheel_command(commands)
    return parser.parse_args(list(arguments))


def test_the_check_command_prints_the_trigger(served, capsys):
    registry, version, store = served
    free_feedback(store, 2)
    args = parse("flywheel", "--check", "--registry-dir", str(registry.root), "-p", "min_new_feedback=2")
    assert args.handler is flywheel_command and args.handler(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["turn"] and printed["new_feedback"] == 2 and printed["champion"] == version


def test_retrain_with_nothing_new_changes_nothing(served, capsys, tmp_path):
    registry, version, _ = served
    args = parse("retrain", "--registry-dir", str(registry.root), "--run-dir", str(tmp_path / "turn"), "-t", "epochs=1")
    assert args.handler is retrain_command and args.handler(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"status": "nothing_new", "champion": version, "new_feedback": 0, "skipped": {}}
    assert not (tmp_path / "turn").exists() and registry.versions(NAME) == [version]


def test_a_flywheel_turn_that_is_not_due_does_nothing(served, capsys):
    registry, version, _ = served
    args = parse("flywheel", "--registry-dir", str(registry.root))
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "no_turn"
    assert registry.versions(NAME) == [version] and registry.aliases(NAME) == {"production": version}


@pytest.mark.parametrize("arguments, message", [
    (["--champion", "v0042"], "has no version v0042"),
    (["-p", "holdout_fraction=2"], "holdout_fraction=2.0 must lie strictly between 0 and 1"),
    (["-p", "epochs=2"], "Unknown parameter"),
])
def test_bad_settings_are_clear_errors(served, arguments, message):
    registry, _, _ = served
    args = parse("flywheel", "--check", "--registry-dir", str(registry.root), *arguments)
    with pytest.raises(AinativeError, match=message):
        args.handler(args)


def test_an_unknown_rule_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parse("flywheel", "--promote-if", "always")
    assert "invalid choice" in capsys.readouterr().err
