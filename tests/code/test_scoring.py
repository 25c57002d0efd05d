"The scoring chapter (2a): metrics equal to scikit-learn's, calibration math equal to SciPy's, batching, parity, timing, and a light module."
import subprocess
import sys
import time

import numpy as np
import pytest

from ainative.core import ConfigError, ParityError
from ainative.scoring import (_log_softmax, batched_logits, classification_metrics, confusion_matrix, measure,
                              negative_log_likelihood, parity_report, require_parity, sample_batches)


@pytest.mark.parametrize("seed, classes", [(0, 3), (1, 10), (2, 77)])
def test_metrics_equal_scikit_learns(seed, classes):
    from sklearn import metrics
    rng = np.random.default_rng(seed)
    truth, guess = rng.integers(0, classes, 300), rng.integers(0, classes, 300)
    guess[guess == classes - 1] = 0  # the last class is never predicted
    truth[:3], guess[3:6] = -1, classes  # ids the label map does not know
    ours = classification_metrics(truth, guess, [f"c{i}" for i in range(classes)])
    ids = list(range(classes))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(truth, guess, labels=ids, zero_division=0)
    assert ours["accuracy"] == metrics.accuracy_score(truth, guess)
    assert ours["macro_f1"] == metrics.f1_score(truth, guess, labels=ids, average="macro", zero_division=0)
    assert ours["confusion_matrix"] == metrics.confusion_matrix(truth, guess, labels=ids).tolist()
    assert [m["precision"] for m in ours["per_class"].values()] == precision.tolist()
    assert [m["recall"] for m in ours["per_class"].values()] == recall.tolist()
    assert [m["f1"] for m in ours["per_class"].values()] == f1.tolist()
    assert [m["support"] for m in ours["per_class"].values()] == support.tolist()
    assert ours["examples"] == 300


def test_a_class_absent_from_both_sides_scores_zero():
    scores = classification_metrics(np.array([0, 0, 1]), np.array([0, 0, 1]), ["a", "b", "never"])
    assert scores["per_class"]["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert confusion_matrix([0, 2, 5], [0, 1, 1], 3).tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_unequal_lengths_are_refused():
    with pytest.raises(ConfigError, match="one prediction per label"):
        classification_metrics(np.array([0, 1]), np.array([0]), ["a", "b"])


def test_log_softmax_and_nll_equal_scipys():
    from scipy.special import log_softmax
    logits = np.random.default_rng(0).normal(scale=30, size=(200, 7))
    assert np.allclose(_log_softmax(logits), log_softmax(logits, axis=-1), rtol=0, atol=1e-12)
    labels = np.arange(200) % 7
    expected = -log_softmax(logits / 2.5, axis=-1)[np.arange(200), labels].mean()
    assert negative_log_likelihood(logits, labels, 2.5) == pytest.approx(expected, rel=1e-12)


def test_batched_logits_sorts_by_length_and_restores_the_order():
    seen = []
    def predict(texts):
        seen.append([len(t) for t in texts])
        return np.array([[len(t), 0.0] for t in texts])
    texts = ["ccc", "a", "bb", "dddd", "", "ee"]
    logits = batched_logits(predict, texts, batch_size=4)
    assert logits[:, 0].tolist() == [3, 1, 2, 4, 0, 2] and logits.dtype == np.float32
    assert seen == [[0, 1, 2, 2], [3, 4]]


def test_parity_passes_a_faithful_copy_and_refuses_a_wrong_one():
    reference = np.random.default_rng(0).normal(size=(500, 3))
    assert require_parity(parity_report(reference, reference + 1e-7), "copy")["agreement"] == 1.0
    with pytest.raises(ParityError) as refused:
        require_parity(parity_report(reference, -reference), "negated.onnx")
    assert refused.value.where == "negated.onnx" and "500" in refused.value.what


def test_length_grouped_batches_carry_less_padding():
    texts = ["x" * n for n in range(1, 200)]
    padding = {grouped: sum(max(map(len, b)) * len(b) - sum(map(len, b)) for b in sample_batches(texts, 16, 20, grouped))
               for grouped in (False, True)}
    assert padding[True] < padding[False] / 4
    assert sample_batches(texts, 4, 3, seed=1) == sample_batches(texts, 4, 3, seed=1)


def test_measure_times_at_least_five_batches():
    calls = []
    def predict(texts):
        calls.append(len(texts))
        time.sleep(0.001)
        return np.zeros((len(texts), 2))
    timed = measure(predict, ["a", "bb", "ccc"], batch_size=2, seconds=0.0, warmup=2)
    assert timed["batches"] == 5 and len(calls) == 7 and set(calls) == {2}  # two warm-up batches are not timed
    assert timed["p50_ms"] >= 1 and timed["p50_ms"] <= timed["p95_ms"] <= timed["p99_ms"]
    assert timed["throughput"] <= 2 / 0.001 and timed["batching"] == "random"


def test_the_module_needs_numpy_only():
    "The base install, the registry's CLI and the server may import it: no pandas, SciPy, scikit-learn or torch."
    probe = ("import sys, ainative.scoring; "
             "print(sorted(m for m in ('pandas', 'scipy', 'sklearn', 'torch') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("module, names", [
    ("ainative.training", ["classification_metrics"]),
    ("ainative.optimize", ["batched_logits", "parity_report", "require_parity", "sample_batches", "measure"]),
    ("ainative.explain", ["calibration_report", "reliability_bins", "expected_calibration_error", "negative_log_likelihood",
                          "fit_temperature", "classification_metrics"])])
def test_the_old_homes_still_answer(module, names):
    "What moved down to scoring is imported back where it was, so existing imports keep working."
    import importlib
    import ainative.scoring as scoring
    old = importlib.import_module(module)
    for name in names:
        assert getattr(old, name) is getattr(scoring, name), (module, name)
