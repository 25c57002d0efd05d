"Integrated-gradients attributions on a tiny BERT: word merging, special tokens, completeness, targets, bad input, HTML."
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from ainative.core import AinativeError, ConfigError, EmptyTextError, NonStringTextError
from ainative.demo import tiny_model
from tiny_models import LABELS
from ainative.attributions import embedding_layer, explain_text, merge_to_words, padding_reference, token_attributions
from ainative.explain import attribution_html, plot_attributions


def test_word_pieces_join_their_word_and_special_tokens_go(tokenizer, tiny):
    text = "My unrefundable parcel hasn't arrived!"
    tokens = tokenizer.tokenize(text)
    assert len(tokens) > len(text.split())                      # the tokenizer really splits words into pieces
    assert any(token.startswith("##") for token in tokens)
    explanation = explain_text(tiny, tokenizer, text, n_steps=8)
    assert [w["word"] for w in explanation["words"]] == text.split()  # one entry per word: no ##pieces, no [CLS]/[SEP]
    assert not any(w["word"] in ("[CLS]", "[SEP]", "[PAD]") or w["word"].startswith("##") for w in explanation["words"])


def test_merge_sums_the_pieces_of_each_word(tokenizer):
    text = "unrefundable  parcel"  # two spaces: words are whitespace-separated, whatever the spacing
    encoded = tokenizer(text, return_offsets_mapping=True)
    scores = np.arange(len(encoded["input_ids"]), dtype=float)  # token i scores i
    words = merge_to_words(text, encoded["offset_mapping"], encoded.word_ids(), scores)
    pieces = len(tokenizer.tokenize("unrefundable"))
    assert [w["word"] for w in words] == ["unrefundable", "parcel"]
    assert words[0]["attribution"] == sum(range(1, pieces + 1))          # tokens 1..pieces; [CLS] (0) left out
    assert words[1]["attribution"] == sum(range(pieces + 1, len(scores) - 1))  # [SEP] (last) left out


def test_reference_input_keeps_cls_and_sep_only(tokenizer):
    encoded = tokenizer("where is my parcel", return_tensors="pt")
    keep = torch.tensor([w is None for w in encoded.word_ids(0)])
    reference = padding_reference(encoded["input_ids"], keep, tokenizer.pad_token_id)[0].tolist()
    assert reference[0] == tokenizer.cls_token_id and reference[-1] == tokenizer.sep_token_id
    assert set(reference[1:-1]) == {tokenizer.pad_token_id} and len(reference) == encoded["input_ids"].shape[1]


def test_delta_is_finite_and_attributions_add_up_to_the_change(tokenizer, tiny):
    "Completeness, checked against f(x) and f(reference input) computed here, not by the code under test."
    text = "I want a refund for my broken kettle"
    explanation = explain_text(tiny, tokenizer, text, n_steps=64)
    encoded = tokenizer(text, return_tensors="pt")
    keep = torch.tensor([w is None for w in encoded.word_ids(0)])
    reference = padding_reference(encoded["input_ids"], keep, tokenizer.pad_token_id)
    target = explanation["label_id"]
    with torch.no_grad():
        f_x = torch.softmax(tiny(**encoded).logits, -1)[0, target].item()
        f_reference = torch.softmax(tiny(input_ids=reference, attention_mask=encoded["attention_mask"],
                                         token_type_ids=encoded["token_type_ids"]).logits, -1)[0, target].item()
    total = sum(w["attribution"] for w in explanation["words"])
    assert math.isfinite(explanation["delta"])
    assert explanation["probability"] == pytest.approx(f_x, abs=1e-5)
    assert explanation["baseline_probability"] == pytest.approx(f_reference, abs=1e-5)  # the API's name for f(reference)
    assert abs(total - (f_x - f_reference)) <= abs(explanation["delta"]) + 1e-5
    assert abs(explanation["delta"]) < 0.05 * abs(f_x - f_reference) + 1e-4  # 64 steps converge on this model


def test_more_steps_do_not_converge_worse(tokenizer, tiny):
    text = "cancel the order I placed yesterday please"
    coarse = abs(explain_text(tiny, tokenizer, text, n_steps=2)["delta"])
    fine = abs(explain_text(tiny, tokenizer, text, n_steps=100)["delta"])
    assert fine <= coarse + 1e-6


def test_target_by_id_or_name_and_unknown_target(tokenizer, tiny):
    by_name = explain_text(tiny, tokenizer, "where is my parcel", n_steps=4, target="cancel_order")
    by_id = explain_text(tiny, tokenizer, "where is my parcel", n_steps=4, target=2)
    assert by_name["label"] == by_id["label"] == "cancel_order" and by_name["label_id"] == 2
    assert by_name["words"] == by_id["words"]
    for bad in ["no_such_label", 7, -1, True]:
        with pytest.raises(ConfigError, match="Unknown target"):
            explain_text(tiny, tokenizer, "where is my parcel", n_steps=4, target=bad)


@pytest.mark.parametrize("bad, error", [("", EmptyTextError), ("  \n ", EmptyTextError), (None, NonStringTextError),
                                        (42, NonStringTextError)])
def test_bad_text_gets_a_clear_error(tokenizer, tiny, bad, error):
    with pytest.raises(error) as caught:
        explain_text(tiny, tokenizer, bad)
    assert caught.value.where == "text" and caught.value.fix


def test_model_mode_and_gradients_are_left_alone(tokenizer):
    model = tiny_model(LABELS, vocab_size=len(tokenizer), seed=3).train()
    first = explain_text(model, tokenizer, "refund my order", n_steps=16)
    second = explain_text(model, tokenizer, "refund my order", n_steps=16)
    assert model.training                                    # restored
    assert all(p.grad is None for p in model.parameters())   # nothing accumulated
    assert first["words"] == second["words"]                 # dropout was off during the explanation


def test_works_under_inference_mode(tokenizer, tiny):
    "The server may call it inside torch.inference_mode(); gradients are still needed."
    with torch.inference_mode():
        explanation = explain_text(tiny, tokenizer, "where is my parcel", n_steps=4)
    assert len(explanation["words"]) == 4


def test_long_text_is_truncated_and_flagged(tokenizer, tiny):
    text = " ".join(["parcel"] * 40)
    explanation = explain_text(tiny, tokenizer, text, n_steps=4, max_length=16)
    assert explanation["truncated"] and len(explanation["words"]) == 40
    assert all(w["attribution"] == 0 for w in explanation["words"][14:])  # beyond 14 word tokens: never seen
    assert not explain_text(tiny, tokenizer, "parcel", n_steps=4)["truncated"]


def test_output_is_json_able(tokenizer, tiny):
    explanation = explain_text(tiny, tokenizer, "Where's my parcel?", n_steps=4)
    assert json.loads(json.dumps(explanation)) == explanation
    assert {"text", "label", "probability", "words", "delta"} <= set(explanation)


def test_embedding_layer_error_names_the_model():
    with pytest.raises(AinativeError, match="no base_model.embeddings") as caught:
        embedding_layer(torch.nn.Linear(3, 3))
    assert caught.value.where == "Linear"


def test_token_attributions_one_score_per_token(tokenizer, tiny):
    encoded = tokenizer("please refund me", return_tensors="pt")
    keep = torch.tensor([w is None for w in encoded.word_ids(0)])
    result = token_attributions(tiny, dict(encoded), padding_reference(encoded["input_ids"], keep, 0), target=0, n_steps=8)
    assert result.scores.shape == (encoded["input_ids"].shape[1],)
    assert result.scores[0] == 0 and result.scores[-1] == 0  # [CLS] and [SEP] equal the reference input's
    assert result.value - result.reference_value == pytest.approx(result.scores.sum() + result.delta, abs=1e-5)


def test_html_escapes_user_text(tokenizer, tiny):
    explanation = explain_text(tiny, tokenizer, '<script>alert("x")</script> & <b>refund</b>', n_steps=4)
    page = attribution_html(explanation)
    assert "<script>" not in page and "<b>refund</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "&amp;" in page
    label_attack = {**explanation, "label": "<img src=x onerror=alert(1)>"}
    assert "<img" not in attribution_html(label_attack)


def test_html_shades_by_sign():
    explanation = {"label": "refund_request", "probability": 0.9, "baseline_probability": 0.1, "delta": 0.0,
                   "words": [{"word": "refund", "attribution": 0.5}, {"word": "not", "attribution": -0.25},
                             {"word": "me", "attribution": 0.0}]}
    page = attribution_html(explanation)
    green, red = page.index("rgba(22, 163, 74, 0.80)"), page.index("rgba(220, 38, 38, 0.44)")
    assert green < page.index(">refund<") and red < page.index(">not<")


def test_attribution_plot_has_a_panel_per_text(tokenizer, tiny):
    import matplotlib.pyplot as plt
    explanations = [explain_text(tiny, tokenizer, t, n_steps=4) for t in ["where is my parcel", " ".join(["word"] * 30)]]
    figure = plot_attributions(explanations, max_words=10)
    panels = [ax for ax in figure.axes if ax.get_visible() and ax.has_data()]
    assert len(panels) == 2 and len(panels[1].get_yticklabels()) == 10
    assert "largest 10 of 30 words" in panels[1].get_title()
    plt.close(figure)


def test_the_module_loads_without_torch():
    "The server imports it for /explain and must start without torch: the heavy packages load inside its functions."
    probe = ("import sys, ainative.attributions; "
             "print(sorted(m for m in ('torch', 'captum', 'transformers', 'pandas', 'scipy', 'sklearn') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_stage_module_still_answers_for_the_moved_names():
    "`from ainative.explain import explain_text` (and the rest that moved to chapter 7a) keeps working."
    import ainative.attributions as attributions
    import ainative.explain as explain
    for name in ("explain_text", "token_attributions", "merge_to_words", "embedding_layer", "model_lock",
                 "ExplainTimeoutError", "TokenAttributions", "class_id", "padding_reference"):
        assert getattr(explain, name) is getattr(attributions, name), name
