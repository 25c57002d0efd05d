"""Promotion: the production gate, forced overrides, different test sets, rollback, and always-valid aliases.json."""
from __future__ import annotations

import json

import pytest

from ainative.core import ConfigError, RegistryError

MODEL = "intent-classifier"


@pytest.fixture
def production(registry, make_run) -> str:
    "v0001 (test accuracy 0.90, macro-F1 0.88) in production."
    version = registry.register(make_run(accuracy=0.90, macro_f1=0.88))
    registry.promote(MODEL, version)
    return version


def aliases_on_disk(registry) -> dict:
    return json.loads((registry.model_root(MODEL) / "aliases.json").read_text())


def test_a_worse_candidate_is_refused_with_both_numbers(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.80, macro_f1=0.88))
    history_before = registry.history(MODEL)
    with pytest.raises(RegistryError) as caught:
        registry.promote(MODEL, candidate)
    message = str(caught.value)
    assert "accuracy 0.8000" in message and "0.9000" in message
    assert "force=True" in caught.value.fix and "recorded" in caught.value.fix
    assert aliases_on_disk(registry) == {"production": production}
    assert registry.history(MODEL) == history_before


def test_a_worse_macro_f1_alone_is_refused(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.95, macro_f1=0.80))
    with pytest.raises(RegistryError, match=r"macro_f1 0\.8000 .* 0\.8800"):
        registry.promote(MODEL, candidate)


def test_a_candidate_within_tolerance_is_accepted(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.897, macro_f1=0.876))
    entry = registry.promote(MODEL, candidate)
    assert (entry["from"], entry["to"], entry["forced"]) == (production, candidate, False)
    assert aliases_on_disk(registry) == {"production": candidate}


def test_the_tolerance_is_a_parameter(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.85, macro_f1=0.85))
    with pytest.raises(RegistryError):
        registry.promote(MODEL, candidate)
    registry.promote(MODEL, candidate, tolerance=0.06)
    assert registry.aliases(MODEL)["production"] == candidate


def test_force_overrides_the_gate_and_is_recorded(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.70, macro_f1=0.60))
    entry = registry.promote(MODEL, candidate, force=True, reason="hotfix for a legal issue")
    assert registry.aliases(MODEL)["production"] == candidate
    recorded = registry.history(MODEL)[-1]
    assert recorded == entry
    assert recorded["forced"] is True and recorded["from"] == production and recorded["to"] == candidate
    assert "hotfix for a legal issue" in recorded["reason"] and "0.7000" in recorded["reason"]


def test_different_test_sets_are_refused_unless_forced(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.99, macro_f1=0.99, test_sha256="e" * 64))
    with pytest.raises(RegistryError, match="different test sets") as caught:
        registry.promote(MODEL, candidate)
    assert "force=True" in caught.value.fix
    assert registry.aliases(MODEL)["production"] == production
    registry.promote(MODEL, candidate, force=True)
    assert registry.aliases(MODEL)["production"] == candidate
    assert registry.history(MODEL)[-1]["forced"] is True


def test_staging_is_not_gated(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.10, macro_f1=0.10))
    registry.promote(MODEL, candidate, alias="staging")
    assert aliases_on_disk(registry) == {"production": production, "staging": candidate}


def test_rollback_restores_the_previous_version(registry, make_run, production):
    candidate = registry.register(make_run(accuracy=0.95, macro_f1=0.95))
    registry.promote(MODEL, candidate)
    entry = registry.rollback(MODEL)
    assert (entry["from"], entry["to"], entry["action"]) == (candidate, production, "rollback")
    assert aliases_on_disk(registry) == {"production": production}
    assert registry.history(MODEL)[-1] == entry


def test_rollback_without_an_earlier_version_is_an_error(registry, make_run, production):
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(MODEL)  # production was set once, from nothing
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(MODEL, alias="staging")  # never set
    assert registry.aliases(MODEL) == {"production": production}


def test_rollback_moves_only_the_alias_named(registry, make_run, production):
    second = registry.register(make_run(accuracy=0.95, macro_f1=0.95))
    registry.promote(MODEL, second, alias="staging")
    registry.promote(MODEL, production, alias="staging")
    registry.promote(MODEL, second)
    registry.rollback(MODEL, alias="staging")
    assert registry.aliases(MODEL) == {"production": second, "staging": second}


def test_aliases_json_is_valid_after_every_change(registry, make_run, production):
    versions = [production] + [registry.register(make_run(accuracy=0.9 + i / 100, macro_f1=0.9)) for i in range(3)]
    operations = [lambda: registry.promote(MODEL, versions[1]), lambda: registry.promote(MODEL, versions[2], alias="staging"),
                  lambda: registry.promote(MODEL, versions[3]), lambda: registry.rollback(MODEL),
                  lambda: registry.promote(MODEL, versions[3], alias="canary-1"), lambda: registry.rollback(MODEL)]
    for operation in operations:
        operation()
        assert aliases_on_disk(registry) == registry.aliases(MODEL)
        assert not list(registry.model_root(MODEL).glob(".aliases.json*"))  # no temp file left behind
    assert registry.aliases(MODEL) == {"production": versions[3], "staging": versions[2], "canary-1": versions[3]}
    rows = {row["version"]: row["aliases"] for row in registry.list_versions(MODEL)}
    assert rows == {versions[0]: [], versions[1]: [], versions[2]: ["staging"], versions[3]: ["canary-1", "production"]}


def test_promoting_to_the_current_version_changes_nothing(registry, production):
    history_before = registry.history(MODEL)
    entry = registry.promote(MODEL, production)
    assert entry["from"] == entry["to"] == production
    assert registry.history(MODEL) == history_before


def test_bad_aliases_and_unknown_versions_are_refused(registry, production):
    with pytest.raises(ConfigError):
        registry.promote(MODEL, production, alias="Prod!")
    with pytest.raises(RegistryError, match="no version v0042"):
        registry.promote(MODEL, "v0042")


def test_metrics_on_different_rows_of_one_test_set_are_not_compared():
    """Seen on CLINC150: a model trained with the out-of-scope rows held out is scored on the in-scope test rows only, one
    with an `oos` class on every row; the same test file, so the hash check alone let the gate compare 96% with 85%."""
    from ainative.registry import promotion_problems
    def version(name: str, accuracy: float, handling: str | None) -> dict:
        return {"version": name, "test_sha256": "same-test-file", "metrics": {
            "test": {"accuracy": accuracy, "macro_f1": accuracy}, "out_of_scope": handling and {"handling": handling, "label": "oos"}}}
    with_class, held_out, older = version("v0002", 0.85, "class"), version("v0003", 0.96, "holdout"), version("v0001", 0.85, None)
    problems = promotion_problems(held_out, with_class)  # on the numbers alone it would pass: 0.96 > 0.85
    assert len(problems) == 1 and "cannot be compared" in problems[0] and "in-scope test rows only" in problems[0], problems
    assert "cannot be compared" in promotion_problems(with_class, held_out)[0]
    assert promotion_problems(with_class, older) == []  # a version from before the out-of-scope option counted every row
