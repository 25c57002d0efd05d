"""Limits of `explain_text` (issue 10, defect 7): memory bounded by internal batching, a step cap, a deadline, one
explanation at a time per model; and the text normalised as training normalises it (defect 5)."""
import threading
import time

import numpy as np
import pytest
import torch

import ainative.attributions as attributions
from ainative.core import ConfigError
from ainative.explain import ExplainConfig
from tiny_models import LABELS

from ainative.demo import tiny_model

TEXT = "I want a refund for my broken kettle, it arrived damaged"


def _attributions(explanation: dict) -> np.ndarray:
    return np.array([w["attribution"] for w in explanation["words"]])


def _largest_embedding_batch(model) -> tuple[list[int], object]:
    "Record the batch size of every pass through the embedding layer (a list), and the hook's handle."
    sizes: list[int] = []
    handle = attributions.embedding_layer(model).register_forward_hook(lambda module, args, output: sizes.append(output.shape[0]))
    return sizes, handle


@pytest.fixture
def slow_model(tokenizer):
    "A tiny BERT of its own whose forward passes each sleep 20 ms, so that concurrent calls really overlap."
    model = tiny_model(LABELS, vocab_size=len(tokenizer), seed=5)
    model.register_forward_pre_hook(lambda module, args, kwargs: time.sleep(0.02), with_kwargs=True)
    return model


def test_internal_batching_leaves_attributions_unchanged(tokenizer, tiny):
    whole = attributions.explain_text(tiny, tokenizer, TEXT, n_steps=50, internal_batch_size=None)
    for chunk in (7, 16, 50):  # 7 does not divide 50: the last chunk is short
        batched = attributions.explain_text(tiny, tokenizer, TEXT, n_steps=50, internal_batch_size=chunk)
        np.testing.assert_allclose(_attributions(batched), _attributions(whole), rtol=1e-4, atol=1e-6)
        assert batched["delta"] == pytest.approx(whole["delta"], abs=1e-5)
        assert batched["probability"] == whole["probability"]


def test_internal_batching_bounds_the_forward_batch(tokenizer):
    "Memory grows with the rows of one pass: with internal batching no pass holds more than the chunk, whatever n_steps."
    model = tiny_model(LABELS, vocab_size=len(tokenizer), seed=1)
    sizes, handle = _largest_embedding_batch(model)
    try:
        attributions.explain_text(model, tokenizer, TEXT, n_steps=120)  # the default chunk
        assert max(sizes) <= ExplainConfig.internal_batch_size < 120
        sizes.clear()
        attributions.explain_text(model, tokenizer, TEXT, n_steps=120, internal_batch_size=5)
        assert max(sizes) == 5
        sizes.clear()
        attributions.explain_text(model, tokenizer, TEXT, n_steps=120, internal_batch_size=None)
        assert max(sizes) == 120  # all steps at once: what the server did before
    finally:
        handle.remove()


def test_steps_beyond_the_cap_are_refused(tokenizer, tiny):
    cap = ExplainConfig.max_steps
    assert cap == attributions.MAX_STEPS == 200  # the stage's cap is the server's
    assert attributions.explain_text(tiny, tokenizer, "refund please", n_steps=cap)["n_steps"] == cap
    for bad in (cap + 1, 10_000, 0):
        with pytest.raises(ConfigError) as caught:
            attributions.explain_text(tiny, tokenizer, "refund please", n_steps=bad)
        assert caught.value.where == "n_steps" and str(cap) in caught.value.what
    with pytest.raises(ConfigError, match="internal_batch_size"):
        attributions.explain_text(tiny, tokenizer, "refund please", internal_batch_size=0)
    with pytest.raises(ConfigError, match="n_steps"):
        ExplainConfig(n_steps=cap + 1)


def test_concurrent_explanations_match_single_threaded_ones(tokenizer, slow_model):
    "captum hooks the shared model's embedding layer: without a per-model lock, one thread's hook rewrites the other's pass."
    texts = [TEXT, "where is my parcel, it has not come yet", "cancel my order now please"]
    expected = {text: attributions.explain_text(slow_model, tokenizer, text, n_steps=24, internal_batch_size=8) for text in texts}
    results, errors = [], []

    def worker(order: list[str]):
        try:
            for text in order:
                results.append((text, attributions.explain_text(slow_model, tokenizer, text, n_steps=24, internal_batch_size=8)))
        except Exception as error:  # collected: an exception in a thread would not fail the test
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(order,)) for order in (texts, texts[::-1])]
    for thread in threads: thread.start()
    for thread in threads: thread.join(120)
    assert not errors, errors
    assert len(results) == 2 * len(texts)
    for text, got in results:
        assert got["label_id"] == expected[text]["label_id"]
        np.testing.assert_allclose(_attributions(got), _attributions(expected[text]), rtol=1e-5, atol=1e-7)
        assert got["delta"] == pytest.approx(expected[text]["delta"], abs=1e-6)
    assert not attributions.embedding_layer(slow_model)._forward_hooks  # captum removed its hooks


def test_a_deadline_stops_the_attribution_and_leaves_the_model_usable(tokenizer, slow_model):
    started = time.monotonic()
    with pytest.raises(attributions.ExplainTimeoutError) as caught:  # 100 passes of >= 20 ms: over 2 s without a deadline
        attributions.explain_text(slow_model, tokenizer, TEXT, n_steps=200, internal_batch_size=2, timeout_s=0.3)
    assert time.monotonic() - started < 1.5
    assert isinstance(caught.value, TimeoutError) and caught.value.fix
    assert not attributions.embedding_layer(slow_model)._forward_hooks  # captum's hooks are gone
    assert attributions.explain_text(slow_model, tokenizer, "refund please", n_steps=4, timeout_s=30)["n_steps"] == 4  # lock free


def test_waiting_for_a_busy_model_times_out(tokenizer, tiny):
    held, release = threading.Event(), threading.Event()

    def hold():
        with attributions.model_lock(tiny):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(attributions.ExplainTimeoutError, match="busy"):
            attributions.explain_text(tiny, tokenizer, "refund please", n_steps=4, timeout_s=0.2)
        assert 0.15 < time.monotonic() - started < 2
    finally:
        release.set()
        holder.join(10)
    assert attributions.explain_text(tiny, tokenizer, "refund please", n_steps=4, timeout_s=5)["n_steps"] == 4


def test_text_is_normalised_as_in_training(tokenizer, tiny):
    "Training texts are NFKC- and whitespace-normalised (ainative.core.normalize_text); explanations must see the same."
    plain = attributions.explain_text(tiny, tokenizer, "refund my parcel please", n_steps=8)
    odd = attributions.explain_text(tiny, tokenizer, "  ｒｅｆｕｎｄ\u00a0my \t parcel\u3000please ", n_steps=8)  # fullwidth, NBSP, tabs
    assert odd["text"] == plain["text"] == "refund my parcel please"
    assert [w["word"] for w in odd["words"]] == ["refund", "my", "parcel", "please"]
    np.testing.assert_allclose(_attributions(odd), _attributions(plain), rtol=1e-6)
    assert odd["probability"] == pytest.approx(plain["probability"])
