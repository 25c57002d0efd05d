"""The flywheel's proof over real HTTP (steps 4-6 of the issue, on top of the serve-free turn): champion A is served on
loopback with a challenger alias beside it; A answers a slice wrongly and users correct it; the retrained B is picked up
as a shadow and /monitor reports agreement and feedback accuracy of both; the gate promotes B and the running server
hot-reloads it and gets the slice right more often than A did; no logged answer is lost across the reload; a second
turn with nothing new in the feedback changes nothing."""
from __future__ import annotations

import shutil
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from flywheel_fixtures import CHALLENGER_TRAINING, FAST_OPTIMIZATION, SLICE_TEXTS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from live_server import ServerProcess, wait_until  # noqa: E402  (tests/serving's helpers)

from ainative.demo import DEMO_LABELS
from ainative.flywheel import FlywheelConfig, flywheel_turn, promote_if_better, retrain
from ainative.monitor import RequestStore, default_database_url
from ainative.registry import Registry

NAME = "intent-classifier"
LOAD_TIMEOUT_S = 90
BACKGROUND_TEXT = "where is my kettle"


@pytest.fixture
def served_champion(trained_champion, tmp_path) -> dict:
    "A private registry whose production A is optimised (ONNX), so it can serve; its run is a private copy too."
    from ainative.optimize import OptimizationConfig, optimize_model
    source = trained_champion["folder"]
    shutil.copytree(source / "registry", tmp_path / "registry", symlinks=True)
    shutil.copytree(source / "run-a", tmp_path / "run-a")
    optimize_model(OptimizationConfig.from_params({**FAST_OPTIMIZATION, "run_dir": str(tmp_path / "run-a"),
                                                   "registry_dir": str(tmp_path / "registry"), "version": trained_champion["version"]}))
    return {"registry": tmp_path / "registry", "version": trained_champion["version"]}


def ask(client, texts: list[str], answered: list[dict]) -> list[dict]:
    "Each text through /predict (all must be answered); the answers, also appended to `answered`."
    answers = []
    for text in texts:
        response = client.post("/predict", json={"text": text})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    answered.extend(answers)
    return answers


def correct(client, answers: list[dict], label: str) -> None:
    "Users say `label` was right for each of `answers`."
    stored = client.post("/feedback", json={"items": [{"request_id": a["request_id"], "label": label} for a in answers]})
    assert stored.status_code == 200 and stored.json()["stored"] == len(answers), stored.text


def test_shadow_then_promotion_reloads_the_server_loses_nothing_and_a_second_turn_changes_nothing(served_champion, tmp_path):
    registry, a = Registry(served_champion["registry"]), served_champion["version"]
    config = FlywheelConfig(registry_dir=str(registry.root), min_new_feedback=len(SLICE_TEXTS), promote_if="significant")
    server = ServerProcess(registry.root, tmp_path, env={"AINATIVE_LOG_FLUSH_S": "0.1", "AINATIVE_RELOAD_INTERVAL_S": "0.2"},
                           args=("--challenger", config.challenger_alias, "--shadow-share", "1")).start().wait_ready()
    answered: list[dict] = []  # every answer a client received, all phases
    try:
        with server.client() as client:
            assert client.get("/ready").json()["challenger"]["state"] == "waiting"  # no challenger yet
            # 1-2: A answers the slice; users correct it with the label A gives least (a slice A gets wrong)
            first = ask(client, SLICE_TEXTS, answered)
            assert {answer["model_version"] for answer in first} == {a}
            counts = Counter(answer["intent"] for answer in first)
            slice_label = min(DEMO_LABELS, key=lambda label: (counts[label], label))
            a_right = sum(answer["intent"] == slice_label for answer in first) / len(first)
            assert a_right <= 0.2, "the slice must be one the champion gets wrong"
            correct(client, first, slice_label)

            # 3: a turn's challenger B, on the challenger alias (judged later, through the gate)
            made = retrain(config, CHALLENGER_TRAINING, FAST_OPTIMIZATION)
            b = made.challenger
            assert made.status == "trained" and registry.show(NAME, b)["parent"] == a and registry.aliases(NAME)["challenger"] == b

            # 4: the server picks B up as a shadow; A still answers everything; /monitor compares the two
            wait_until(lambda: (lambda c: c["state"] == "serving" and c["version"] == b)(client.get("/ready").json()["challenger"]),
                       LOAD_TIMEOUT_S, f"the server loading {b} as the shadow")
            second = ask(client, SLICE_TEXTS, answered)
            assert {answer["model_version"] for answer in second} == {a}, "a shadow never answers"
            wait_until(lambda: client.get("/ready").json()["challenger"]["counts"].get("scored", 0) == len(SLICE_TEXTS),
                       30, "the shadow scoring the slice")
            correct(client, second, slice_label)
            comparison = client.get("/monitor").json()["comparison"]
            assert comparison["status"] == "compared"
            assert (comparison["champion"]["version"], comparison["challenger"]["version"]) == (a, b)
            pairs = comparison["agreement"]
            assert pairs["pairs"] == len(SLICE_TEXTS) and 0 <= pairs["rate"] < 1  # they disagree where B learned the slice
            a_shadowed = sum(answer["intent"] == slice_label for answer in first + second) / (2 * len(SLICE_TEXTS))
            assert comparison["champion"]["accuracy"] == pytest.approx(a_shadowed)
            assert comparison["challenger"]["feedback"] == len(SLICE_TEXTS)
            assert comparison["challenger"]["accuracy"] > comparison["champion"]["accuracy"]
            assert comparison["accuracy_test"]["status"] == "tested" and comparison["accuracy_test"]["better"] == "challenger"

            # 5: the gate promotes B while traffic flows; the running server hot-reloads it and does better on the slice
            during: list[tuple[int, dict]] = []
            stop = threading.Event()

            def traffic():
                with server.client() as background:
                    while not stop.is_set():
                        response = background.post("/predict", json={"text": BACKGROUND_TEXT})
                        during.append((response.status_code, response.json()))
            sender = threading.Thread(target=traffic)
            sender.start()
            try:
                decision = promote_if_better(registry, NAME, b, a, config.promote_if, config.alpha, config.tolerance)
                assert decision["promote"], decision["reasons"]
                wait_until(lambda: any(body.get("model_version") == b for _, body in during[-5:]), LOAD_TIMEOUT_S,
                           f"the server answering with {b}")
            finally:
                stop.set()
                sender.join(30)
            assert {status for status, _ in during} == {200}, "requests kept being answered across the reload"
            answered.extend(body for _, body in during)
            assert client.get("/ready").json()["challenger"]["state"] == "idle"  # the challenger is the champion now
            third = ask(client, SLICE_TEXTS, answered)
            assert {answer["model_version"] for answer in third} == {b}
            b_right = sum(answer["intent"] == slice_label for answer in third) / len(third)
            assert b_right > a_right, (b_right, a_right)
            print({"agreement": pairs, "feedback_accuracy": {side: comparison[side]["accuracy"] for side in ("champion", "challenger")},
                   "two_proportion_p": comparison["accuracy_test"]["p_value"], "paired_p": comparison["paired_test"]["p_value"],
                   "slice_right": {"A": a_right, "B after reload": b_right}, "answers_during_reload": len(during)})
            client.get("/monitor")  # flushes the request log
            scored = client.get("/ready").json()["challenger"]["counts"]["scored"]

        # 6: nothing in the request log is lost across the reload: one row per answer, and the shadow's
        store = RequestStore(default_database_url(registry.root, NAME))
        try:
            rows = store.recent(shadow=True)
        finally:
            store.close()
        answers = [row for row in rows if row["role"] != "shadow"]
        assert len(answers) == len(answered) and sorted(r["request_id"] for r in answers) == sorted(x["request_id"] for x in answered)
        assert Counter(row["model_version"] for row in answers) == Counter(x["model_version"] for x in answered)
        shadows = [row for row in rows if row["role"] == "shadow"]  # the slice, and the background traffic until the promotion
        assert len(shadows) == scored >= len(SLICE_TEXTS) and {row["model_version"] for row in shadows} == {b}
        assert {row["request_id"] for row in shadows} <= {x["request_id"] for x in answered if x["model_version"] == a}
    finally:
        server.stop()

    # ... and a second turn, whose feedback repeats what B's dataset already holds, changes nothing
    versions, aliases, history = registry.versions(NAME), registry.aliases(NAME), registry.history(NAME)
    again = flywheel_turn(config, training=CHALLENGER_TRAINING, optimization=FAST_OPTIMIZATION)
    assert again["status"] == "nothing_new" and again["champion"] == b and again["skipped"] == {"duplicate": len(SLICE_TEXTS)}
    assert (registry.versions(NAME), registry.aliases(NAME), registry.history(NAME)) == (versions, aliases, history)
