"Error analysis: confusion ordering, largest confusions, pairs with examples, confident mistakes, plots at 77 classes."
import numpy as np
import pytest

from ainative.explain import (confident_mistakes, confused_pairs, confusion_order, largest_confusions,
                              plot_confusion_matrix, plot_per_class_f1)
from ainative.scoring import classification_metrics


def test_order_puts_confused_classes_side_by_side():
    confusion = np.diag([20] * 8)
    confusion[0, 5], confusion[5, 0] = 6, 4
    confusion[2, 7] = 5
    confusion[1, 6], confusion[6, 1] = 2, 2
    order = confusion_order(confusion).tolist()
    assert sorted(order) == list(range(8))
    for a, b in [(0, 5), (2, 7), (1, 6)]:
        assert abs(order.index(a) - order.index(b)) == 1, order


def test_order_without_errors_is_the_identity():
    assert confusion_order(np.diag([3, 4, 5, 6])).tolist() == [0, 1, 2, 3]


def test_largest_confusions_skip_the_diagonal_and_zeros():
    confusion = np.array([[50, 1, 0], [7, 50, 3], [0, 0, 50]])
    assert largest_confusions(confusion, 10) == [(1, 0, 7), (1, 2, 3), (0, 1, 1)]
    tie = np.array([[5, 2, 2], [0, 5, 2], [2, 0, 5]])  # four cells tie for the first place
    assert largest_confusions(tie, 2, whole_ties=True) == [(0, 1, 2), (0, 2, 2), (1, 2, 2), (2, 0, 2)]  # kept whole
    assert largest_confusions(tie, 1, whole_ties=True) == []                                             # too many to box
    assert len(largest_confusions(tie, 1)) == 1


def test_pairs_add_both_directions_and_show_examples():
    names = ["a", "b", "c"]
    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    predictions = np.array([1, 0, 0, 0, 1, 1, 2])
    texts = [f"text {i}" for i in range(7)]
    pairs = confused_pairs(labels, predictions, texts, names, examples=1)
    assert pairs[["label a", "label b", "errors", "a → b", "b → a"]].values.tolist() == [["a", "b", 3, 1, 2],
                                                                                      ["b", "c", 1, 0, 1]]
    assert pairs.examples[0] == "text 0 [a → b]"
    assert confused_pairs(labels, labels, texts, names).empty


def test_confident_mistakes_are_wrong_and_sorted():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([1, 1, 1, 0])
    table = confident_mistakes(labels, probabilities, ["w", "x", "y", "z"], ["neg", "pos"])
    assert table.text.tolist() == ["z", "w", "y"]  # confidence 0.95, 0.9, 0.6; "x" was right
    assert table["probability of true"].tolist() == pytest.approx([0.05, 0.1, 0.4])
    assert (table.true != table.predicted).all()


def banking_like(n: int = 77, seed: int = 0):
    "A 77-class confusion matrix with long label names, 40 test examples a class, a few confusions."
    rng = np.random.default_rng(seed)
    names = [f"intent_with_a_rather_long_name_{i:02d}" for i in range(n)]
    labels = np.repeat(np.arange(n), 40)
    predictions = labels.copy()
    wrong = rng.choice(len(labels), 200, replace=False)
    predictions[wrong] = (labels[wrong] + rng.integers(1, 3, 200)) % n
    return names, labels, predictions


def test_confusion_matrix_plot_at_77_classes():
    import matplotlib.pyplot as plt
    names, labels, predictions = banking_like()
    metrics = classification_metrics(labels, predictions, names)
    confusion = np.array(metrics["confusion_matrix"])
    figure = plot_confusion_matrix(confusion, names, highlight=12)
    ax = figure.axes[0]
    order = confusion_order(confusion)
    assert [t.get_text() for t in ax.get_xticklabels()] == [names[i] for i in order]  # every class labelled, in order
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 5
    assert 0 < len(ax.patches) <= 24                                             # the largest confusions boxed, ties whole
    assert len(ax.patches) == len(largest_confusions(confusion, 12, whole_ties=True))
    assert len(ax.texts) == len(largest_confusions(confusion, 77 * 77))          # every error cell has its count
    width, height = figure.get_size_inches() * 110
    assert height / 77 >= 20                                                     # pixels per row at save_figure's dpi
    plt.close(figure)


def test_per_class_f1_plot_is_sorted_worst_first():
    import matplotlib.pyplot as plt
    names, labels, predictions = banking_like()
    metrics = classification_metrics(labels, predictions, names)
    figure = plot_per_class_f1(metrics["per_class"], metrics["macro_f1"])
    shown = [t.get_text().split(" (")[0] for t in figure.axes[0].get_yticklabels()]
    f1 = [metrics["per_class"][name]["f1"] for name in shown]
    assert len(shown) == 77 and f1 == sorted(f1)
    plt.close(figure)
