"""The production gate on paired answers (issue 26, part 3): versions whose metrics record which test texts they got
right are judged with the evidence chapter's not-worse decision (margin `tolerance`, level `alpha`); an undecided gate
blocks with the reason in words and the way out; every promotion's history line carries the gate's numbers; a
decision made on more evidence (the flywheel's) is recorded, not judged again; and a registry made by the previous code
(manifests without per-text records, history lines without a gate) promotes as before, on the point estimates."""
from __future__ import annotations

import json
import shutil

import pytest

from ainative.core import ConfigError, RegistryError
from ainative.evidence import judge_not_worse
from ainative.registry import Registry, RegistryConfig, promotion_gate

MODEL = "intent-classifier"


def table(both: int, only_production: int, only_candidate: int, neither: int) -> tuple[str, str]:
    "The per-text records (production's, the candidate's) of a paired table."
    production = "1" * (both + only_production) + "0" * (only_candidate + neither)
    candidate = "1" * both + "0" * only_production + "1" * only_candidate + "0" * neither
    return production, candidate


@pytest.fixture
def scored_run(make_run):
    "A demo run whose metrics record `correct`, as a training run's do (accuracy and macro-F1 follow from it)."
    def make(correct: str):
        accuracy = correct.count("1") / len(correct)
        run = make_run(accuracy=accuracy, macro_f1=accuracy)
        metrics_path = run / "reports" / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        metrics["test"]["correct"] = correct
        metrics_path.write_text(json.dumps(metrics))
        return run
    return make


def promoted_pair(registry, scored_run, both, only_production, only_candidate, neither) -> tuple[str, str]:
    production, candidate = table(both, only_production, only_candidate, neither)
    first = registry.register(scored_run(production))
    registry.promote(MODEL, first)
    return first, registry.register(scored_run(candidate))


def test_the_defaults_live_in_the_config():
    assert RegistryConfig().tolerance == 0.01 and RegistryConfig().alpha == 0.05
    with pytest.raises(ConfigError, match="alpha"):
        RegistryConfig(alpha=0.5)


def test_the_registry_keeps_the_runs_record(registry, scored_run):
    version = registry.register(scored_run("1101"))
    assert registry.show(MODEL, version)["metrics"]["test"]["correct"] == "1101"


def test_one_text_fewer_of_30_is_undecided_and_blocked_with_the_way_out(registry, scored_run):
    first, second = promoted_pair(registry, scored_run, 28, 1, 0, 1)
    history = registry.history(MODEL)
    with pytest.raises(RegistryError) as caught:
        registry.promote(MODEL, second)
    assert caught.value.what.count("30 texts cannot tell a") == 1 and "point loss from noise" in caught.value.what
    assert "--force" in caught.value.fix and "ainative serve --challenger" in caught.value.fix and "pooled" in caught.value.fix
    assert registry.aliases(MODEL)["production"] == first and registry.history(MODEL) == history
    entry = registry.promote(MODEL, second, force=True, reason="a person compared them in the shadow")
    assert entry["forced"] and entry["gate"]["decision"]["verdict"] == "undecided"
    assert "a person compared them" in entry["reason"] and "30 texts cannot tell" in entry["reason"]


def test_a_decided_loss_is_refused_as_worse(registry, scored_run):
    _, second = promoted_pair(registry, scored_run, 250, 40, 2, 8)
    with pytest.raises(RegistryError, match="worse by more than the margin") as caught:
        registry.promote(MODEL, second)
    assert "force=True" in caught.value.fix


def test_not_worse_passes_and_the_history_line_carries_the_numbers(registry, scored_run):
    first, second = promoted_pair(registry, scored_run, 2826, 46, 45, 163)  # one text fewer among 3,080
    entry = registry.promote(MODEL, second)
    assert registry.history(MODEL)[-1] == entry and not entry["forced"]
    gate = entry["gate"]
    assert gate["passed"] and gate["method"] == "paired" and gate["problems"] == []
    decision = gate["decision"]
    assert (decision["n"], decision["only_reference"], decision["only_candidate"]) == (3080, 46, 45)
    assert decision["margin"] == 0.01 and decision["alpha"] == 0.05 and -0.01 < decision["interval"][0] < 0 < decision["interval"][1]
    assert 0 < decision["p_worse"] < 1 and entry["reason"].startswith(f"passed the gate against {first}: not worse")


def test_the_margin_is_the_tolerance(registry, scored_run):
    _, second = promoted_pair(registry, scored_run, 250, 40, 2, 8)  # about 12.7 points lost
    registry.promote(MODEL, second, tolerance=0.3)
    assert registry.history(MODEL)[-1]["gate"]["decision"]["margin"] == 0.3


def test_a_decision_made_on_more_evidence_is_recorded_not_judged_again(registry, scored_run):
    first, second = promoted_pair(registry, scored_run, 28, 1, 0, 1)
    pooled = judge_not_worse([True] * 29 + [False] + [True] * 16 + [False] * 20, [True] * 28 + [False] * 2 + [True] * 36,
                             evidence="the test set and the held-out feedback, pooled")
    undecided = judge_not_worse([True] * 29 + [False], [True] * 28 + [False] * 2)
    with pytest.raises(RegistryError, match="the decision given is 'undecided'"):
        registry.promote(MODEL, second, evidence=undecided.to_dict())
    entry = registry.promote(MODEL, second, reason="flywheel", evidence=pooled.to_dict())
    assert not entry["forced"] and entry["gate"]["method"] == "decision given by the caller"
    assert entry["gate"]["decision"] == json.loads(json.dumps(pooled.to_dict())) and entry["reason"].startswith("flywheel (passed")


def test_versions_scored_on_different_row_counts_are_not_paired():
    same = {"test_sha256": "t"}
    gate = promotion_gate({**same, "version": "v2", "metrics": {"test": {"correct": "1" * 30}}},
                          {**same, "version": "v1", "metrics": {"test": {"correct": "1" * 31}}})
    assert not gate["passed"] and gate["method"] == "not comparable" and "cannot be paired" in gate["problems"][0]


def test_a_registry_made_by_the_previous_code_promotes_as_before(registry, make_run, scored_run, tmp_path):
    """Versions without per-text records (as every version registered before the paired gate) and history lines
    without a gate: judged on the point estimates, with the reason saying so; a newer version against an older one too."""
    old = registry.register(make_run(accuracy=0.90, macro_f1=0.88))
    registry.promote(MODEL, old)
    history_path = registry.model_root(MODEL) / "alias_history.jsonl"
    line = json.loads(history_path.read_text().splitlines()[-1])
    line.pop("gate", None)  # the previous code wrote no gate record
    history_path.write_text(json.dumps(line) + "\n")
    assert registry.aliases(MODEL) == {"production": old} and registry.verify(MODEL) == []
    within = registry.register(make_run(accuracy=0.897, macro_f1=0.876))
    entry = registry.promote(MODEL, within)
    assert entry["gate"]["method"] == "point estimates" and "no per-text test record" in entry["reason"]
    worse = registry.register(make_run(accuracy=0.85, macro_f1=0.85))
    with pytest.raises(RegistryError, match="Judged on the point estimates because v0003 and v0002 record no per-text test correctness"):
        registry.promote(MODEL, worse)
    newer = registry.register(scored_run("1" * 9 + "0"))  # 0.9 with a record, against one without: point estimates
    assert registry.promote(MODEL, newer)["gate"]["method"] == "point estimates"
    assert registry.rollback(MODEL)["to"] == within


def test_the_pool_policy_decides_an_undecided_test_set_on_validation_and_test(registry, scored_run):
    "The smoke profile's gate (5 points, pool): the same answers on 30 test and 60 validation texts pass; block refuses them."
    def with_validation(run, correct: str):
        metrics_path = run / "reports" / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        metrics["validation"]["correct"] = correct
        metrics_path.write_text(json.dumps(metrics))
        return run
    same_test, same_validation = "1" * 29 + "0", "1" * 58 + "00"
    first = registry.register(with_validation(scored_run(same_test), same_validation))
    registry.promote(MODEL, first)
    second = registry.register(with_validation(scored_run(same_test), same_validation))
    with pytest.raises(RegistryError, match="30 texts cannot tell"):
        registry.promote(MODEL, second, tolerance=0.05)
    entry = registry.promote(MODEL, second, tolerance=0.05, undecided="pool")
    assert entry["gate"]["method"] == "paired, pooled" and entry["gate"]["decision"]["n"] == 90
    assert entry["gate"]["decision"]["verdict"] == "not worse" and "validation + test pooled" in entry["reason"]
    with pytest.raises(ConfigError, match="undecided"):
        RegistryConfig(undecided="person")


def test_the_pool_policy_refuses_what_cannot_be_pooled(registry, scored_run):
    first, second = promoted_pair(registry, scored_run, 28, 1, 0, 1)  # no validation records
    with pytest.raises(RegistryError, match="cannot be pooled"):
        registry.promote(MODEL, second, undecided="pool")
