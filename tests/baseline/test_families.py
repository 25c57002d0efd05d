"""Comparing the families honestly: McNemar on paired predictions, a verdict in words, serving costs, the choice."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from ainative.baseline import BaselineConfig, compare_families, family_verdict, mcnemar_exact
from ainative.core import ConfigError
from ainative.registry import RegistryConfig, choose_family
from ainative.training import compare_run_families


def test_mcnemar_on_a_hand_checked_example():
    # 20 texts both right, the transformer alone right on 1, the baseline alone on 9, both wrong on 2:
    # under "equally good" the 10 discordant texts are fair coins: p = 2 * P(X <= 1 | n=10) = 2 * 11/1024
    transformer = np.r_[np.ones(20, bool), [True], np.zeros(9, bool), [False, False]]
    baseline = np.r_[np.ones(20, bool), [False], np.ones(9, bool), [False, False]]
    result = mcnemar_exact(transformer, baseline)
    counts = {key: result[key] for key in ("examples", "both", "neither", "first_only", "second_only", "p_value")}
    assert counts == {"examples": 32, "both": 20, "neither": 2, "first_only": 1, "second_only": 9, "p_value": 22 / 1024}
    assert result["difference"] == pytest.approx(8 / 32) and result["confidence"] == 0.95
    low, high = result["interval"]  # Newcombe's, of the second minus the first accuracy (the evidence chapter's)
    assert low < 8 / 32 < high and mcnemar_exact(baseline, transformer)["interval"] == pytest.approx([-high, -low])
    assert result["p_value"] == pytest.approx(2 * binom.cdf(1, 10, 0.5))
    assert mcnemar_exact(baseline, transformer)["p_value"] == result["p_value"]  # symmetric


def test_mcnemar_without_discordant_pairs_and_bad_input():
    same = np.array([True, False, True])
    assert mcnemar_exact(same, same)["p_value"] == 1.0
    with pytest.raises(ConfigError, match="Paired predictions"):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


def test_the_verdict_says_better_as_good_or_worse():
    assert family_verdict({"transformer": 0.70, "baseline": 0.97}, 0.001) == (
        "the baseline is better than the transformer on validation (validation accuracy 97.00% vs 70.00%, McNemar p=0.001)")
    assert family_verdict({"transformer": 0.9938, "baseline": 0.9985}, 0.3).startswith("the baseline is not significantly different from the transformer")
    assert family_verdict({"transformer": 0.95, "baseline": 0.90}, 0.3).startswith("the baseline is not significantly different from the transformer")
    assert family_verdict({"transformer": 0.95, "baseline": 0.90}, 0.01).startswith("the transformer is better")
    with_interval = family_verdict({"transformer": 0.95, "baseline": 0.90}, 0.3, interval=(-0.112, 0.013))
    assert with_interval.startswith("the baseline is not significantly different from the transformer")
    assert with_interval.endswith("difference -5.00 points, 95% interval [-11.20, +1.30])")


@pytest.mark.parametrize("family, accuracy, chosen", [
    ("transformer", {"transformer": 0.5, "baseline": 0.9}, "transformer"),
    ("baseline", {"transformer": 0.9, "baseline": 0.5}, "baseline"),
    ("best", {"transformer": 0.9, "baseline": 0.5}, "transformer"),
    ("best", {"transformer": 0.5, "baseline": 0.9}, "baseline"),
    ("best", {"transformer": 0.8, "baseline": 0.8}, "baseline"),  # a tie: the cheaper family
])
def test_choose_family(family, accuracy, chosen):
    assert choose_family(family, accuracy) == chosen


def test_the_default_family_is_the_transformer():
    assert RegistryConfig().family == "transformer"
    with pytest.raises(ConfigError, match="not a model family"):
        RegistryConfig(family="biggest")
    with pytest.raises(ConfigError):
        choose_family("biggest", {"transformer": 0.5, "baseline": 0.9})


def test_compare_families_pairs_the_validation_predictions():
    truth = np.array([0, 1, 2, 0, 1, 2])
    predictions = {"transformer": {"validation": np.array([0, 1, 2, 0, 0, 0]), "test": np.array([0, 1])},
                   "baseline": {"validation": np.array([0, 1, 2, 0, 1, 0]), "test": np.array([0, 0])}}
    result = compare_families(truth, predictions, np.array([0, 1]))
    assert result["accuracy"] == {"validation": {"transformer": 4 / 6, "baseline": 5 / 6}, "test": {"transformer": 1.0, "baseline": 0.5}}
    assert (result["mcnemar"]["transformer_only"], result["mcnemar"]["baseline_only"]) == (0, 1)
    assert result["mcnemar"]["p_value"] == 1.0 and result["verdict"].startswith("the baseline is not significantly different")
    assert result["mcnemar"]["difference"] == pytest.approx(1 / 6) and "95% interval" in result["verdict"]
    assert "chosen" not in result  # the registry stage chooses (choose_family), on these accuracies
    assert choose_family("best", result["accuracy"]["validation"]) == "baseline"


def test_on_a_templated_dataset_the_baseline_wins_under_best(templated_run):
    result = compare_run_families(templated_run.path, BaselineConfig(bench_seconds=0.1), family="best")
    assert result["accuracy"]["validation"]["baseline"] >= 0.95 > result["accuracy"]["validation"]["transformer"]
    assert result["mcnemar"]["p_value"] < 0.05 and result["verdict"].startswith("the baseline is better than the transformer")
    assert result["chosen"] == "baseline"
    for family in ("transformer", "baseline"):
        cost = result["cost"][family]
        assert cost["size_bytes"] > 0 and set(cost["p50_ms"]) == set(cost["throughput"]) == {"1", "32"}
    assert result["cost"]["transformer"]["model"] == "torch fp32"  # no ONNX export in this run yet
    assert json.loads((templated_run.reports / "families.json").read_text()) == json.loads(json.dumps(result))
    default = compare_run_families(templated_run.path, BaselineConfig(bench_seconds=0.05))
    assert default["chosen"] == "transformer" and default["verdict"] == result["verdict"]  # said, even when not acted on
