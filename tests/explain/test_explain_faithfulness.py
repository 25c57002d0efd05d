"Faithfulness: on a model that decides by one keyword, deleting the top-attributed word hurts more than a random word."
import numpy as np
import pytest
import torch

from ainative.explain import delete_words, deletion_curves, explain_text, faithfulness_summary, plot_deletion_curves
from tiny_models import KEYWORDS, keyword_texts


def probabilities(model, tokenizer):
    def predict(texts):
        with torch.no_grad():
            return torch.softmax(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits, -1).numpy()
    return predict


@pytest.fixture(scope="module")
def keyword_explanations(keyword_model, tokenizer):
    texts, _ = keyword_texts(12, seed=2)
    return [explain_text(keyword_model, tokenizer, text, n_steps=64) for text in texts]


def test_the_keyword_gets_the_largest_attribution(keyword_explanations):
    for explanation in keyword_explanations:
        assert explanation["probability"] - explanation["baseline_probability"] > 0.5  # the baseline says "other"
        top = max(explanation["words"], key=lambda w: w["attribution"])["word"]
        assert top in KEYWORDS, explanation


def test_deleting_the_top_word_hurts_more_than_a_random_word(keyword_model, tokenizer, keyword_explanations):
    curves = deletion_curves(probabilities(keyword_model, tokenizer), keyword_explanations, max_k=3, repeats=10, seed=0)
    summary = faithfulness_summary(curves, top_k=1)
    assert summary["texts"] == len(keyword_explanations)
    assert summary["drop_attributed"] > 0.5                          # the evidence is gone
    assert summary["drop_attributed"] > summary["drop_random"] + 0.3  # a random word is usually filler
    assert summary["share_attributed_larger"] >= 0.9
    assert summary["aopc_attributed"] > summary["aopc_random"]


def test_curves_start_equal_and_cover_k_0_to_max(keyword_model, tokenizer, keyword_explanations):
    curves = deletion_curves(probabilities(keyword_model, tokenizer), keyword_explanations[:3], max_k=4, repeats=3)
    assert sorted(curves.k.unique()) == [0, 1, 2, 3, 4] and len(curves) == 3 * 5
    start = curves[curves.k == 0]
    assert np.allclose(start.attributed, start.random)              # nothing deleted: the same text
    assert np.allclose(start.attributed, [e["probability"] for e in keyword_explanations[:3]], atol=1e-4)


def test_deletion_is_by_word_and_runs_out_gracefully():
    assert delete_words("where is my parcel", [0, 2]) == "is parcel"
    assert delete_words("where is my parcel", []) == "where is my parcel"
    seen = []
    def record(texts):
        seen.extend(texts)
        return np.tile([0.5, 0.5], (len(texts), 1))
    explanation = {"text": "two words", "label_id": 0, "words": [{"word": "two", "attribution": 1.0},
                                                                 {"word": "words", "attribution": 0.0}]}
    curves = deletion_curves(record, [explanation], max_k=4, repeats=2)
    assert len(curves) == 5 and "" in seen                          # k = 3, 4 delete both words, no error
    assert len(seen) == len(set(seen))                              # each distinct text is scored once


def test_random_deletions_are_reproducible(keyword_model, tokenizer, keyword_explanations):
    predict = probabilities(keyword_model, tokenizer)
    first = deletion_curves(predict, keyword_explanations[:4], max_k=2, repeats=3, seed=5)
    again = deletion_curves(predict, keyword_explanations[:4], max_k=2, repeats=3, seed=5)
    assert first.equals(again)


def test_deletion_plot(keyword_model, tokenizer, keyword_explanations):
    import matplotlib.pyplot as plt
    curves = deletion_curves(probabilities(keyword_model, tokenizer), keyword_explanations[:3], max_k=2, repeats=2)
    figure = plot_deletion_curves(curves, top_k=1)
    assert [line.get_label() for line in figure.axes[0].get_lines()][:2] == ["most-attributed words first", "random words"]
    plt.close(figure)
