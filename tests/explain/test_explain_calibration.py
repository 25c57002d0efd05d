"Calibration (chapter 2a's math, chapter 7's diagram): ECE by hand, equal-width bins, temperature scaling, calibration report, bad input."
import numpy as np
import pytest

from ainative.core import AinativeError, ConfigError, softmax
from ainative.explain import plot_reliability
from ainative.scoring import (calibration_report, expected_calibration_error, fit_temperature, negative_log_likelihood,
                              reliability_bins)


def test_ece_matches_a_hand_computed_example():
    # bin (0, 0.5]: 0.2 wrong, 0.4 right -> confidence 0.3, accuracy 0.5, gap 0.2
    # bin (0.5, 1]: 0.6 right, 0.9 wrong -> confidence 0.75, accuracy 0.5, gap 0.25
    # ECE = 2/4 * 0.2 + 2/4 * 0.25 = 0.225
    assert expected_calibration_error([0.2, 0.4, 0.6, 0.9], [0, 1, 1, 0], n_bins=2) == pytest.approx(0.225, abs=1e-12)
    # unequal bins: (0, 0.5] holds 0.1 (right), gap 0.9; (0.5, 1] holds 0.6, 0.7, 0.95 with 2 of 3 right, gap 1/12
    assert expected_calibration_error([0.1, 0.6, 0.7, 0.95], [1, 1, 0, 1], n_bins=2) == pytest.approx(0.25 * 0.9 + 0.75 / 12)


def test_perfectly_calibrated_and_maximally_wrong():
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0], n_bins=10) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0], [0, 0], n_bins=15) == pytest.approx(1.0)


def test_bins_are_equal_width_and_right_closed():
    bins = reliability_bins([0.0, 0.1, 0.2, 0.25, 0.5, 1.0], [1, 1, 1, 1, 1, 1], n_bins=4)
    assert bins.lower.tolist() == [0, 0.25, 0.5, 0.75] and bins.upper.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert bins["count"].tolist() == [4, 1, 0, 1]  # 0 and 0.25 in the first bin, 0.5 in the second, 1.0 in the last
    assert np.isnan(bins.accuracy[2]) and bins["count"].sum() == 6


@pytest.mark.parametrize("confidences, correct", [([1.2], [1]), ([-0.1], [0]), ([0.5, 0.5], [1]), ([], [])])
def test_bad_calibration_input(confidences, correct):
    with pytest.raises(ConfigError):
        expected_calibration_error(confidences, correct)


def toy_logits(scale: float, n: int = 2000, seed: int = 0):
    "Logits that are right about 70% of the time, multiplied by `scale` (large: over-confident)."
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    right = rng.random(n) < 0.7
    logits[np.arange(n), np.where(right, labels, (labels + 1) % 4)] += 2.0
    return logits * scale, labels


def test_temperature_scaling_fixes_an_over_confident_toy():
    logits, labels = toy_logits(scale=4.0)
    temperature = fit_temperature(logits[:1000], labels[:1000])
    assert temperature > 2
    assert negative_log_likelihood(logits[1000:], labels[1000:], temperature) < negative_log_likelihood(logits[1000:], labels[1000:])
    report = calibration_report(logits[:1000], labels[:1000], logits[1000:], labels[1000:], n_bins=15)
    assert report["temperature"] == pytest.approx(temperature)
    assert report["ece_after"] < report["ece_before"] / 2
    assert report["fitted_on"] == "validation" and report["examples"] == 1000 and report["test_examples"] == 1000


def test_temperature_below_one_for_an_under_confident_toy():
    logits, labels = toy_logits(scale=0.3)
    assert fit_temperature(logits, labels) < 1


def test_temperature_is_the_nll_minimum():
    logits, labels = toy_logits(scale=2.0, n=500)
    temperature = fit_temperature(logits, labels)
    best = negative_log_likelihood(logits, labels, temperature)
    for other in (temperature * 0.9, temperature * 1.1):
        assert negative_log_likelihood(logits, labels, other) > best


def test_temperature_never_changes_the_prediction():
    logits, _ = toy_logits(scale=3.0, n=300)
    for temperature in (0.1, 0.7, 5.0):
        assert (softmax(logits, temperature).argmax(1) == logits.argmax(1)).all()
    assert np.allclose(softmax(logits).sum(1), 1)


def test_nll_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])  # probabilities 1/2 and 3/4 for class 0
    assert negative_log_likelihood(logits, np.array([0, 0])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)


def test_fit_temperature_refuses_bad_logits():
    with pytest.raises(AinativeError, match="NaN or infinite"):
        fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ConfigError):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ConfigError, match="class ids"):
        fit_temperature(np.zeros((2, 2)), np.array([0, 2]))


def test_reliability_plot_reports_both_eces():
    import matplotlib.pyplot as plt
    logits, labels = toy_logits(scale=4.0, n=400)
    figure = plot_reliability(logits, labels, 2.5, n_bins=10)
    titles = [ax.get_title() for ax in figure.axes]
    assert any(t.startswith("before") and "ECE" in t for t in titles) and any("T = 2.50" in t for t in titles)
    plt.close(figure)
