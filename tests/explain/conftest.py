"""Fixtures of the explainability tests: the real tokenizer, a tiny random BERT, and a tiny BERT trained on a keyword toy."""
from __future__ import annotations

import pytest

from ainative.model import load_tokenizer
import numpy as np
import torch

# the helpers live in a uniquely named module: test folders each have a conftest.py, so `from conftest import` is ambiguous
from tiny_models import KEYWORDS, LABELS, OTHER, keyword_texts

from ainative.demo import tiny_model


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="session")
def tiny(tokenizer):
    "A random tiny BERT in eval mode."
    return tiny_model(LABELS, vocab_size=len(tokenizer))


@pytest.fixture(scope="session")
def keyword_model(tokenizer):
    "A tiny BERT trained (a few seconds) until its prediction depends on the keyword of the text only."
    model = tiny_model(LABELS + ["other"], vocab_size=len(tokenizer), dropout=0.0)
    texts, labels = keyword_texts(256, seed=0, other_share=0.25)
    encoded = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    # Integrated gradients measures against the all-[PAD] baseline, which training never shows; teach the toy that it
    # means "other", so each keyword text's probability rises from near 0 (baseline) to near 1: something to attribute.
    ids = encoded["input_ids"]
    words = (encoded["attention_mask"] == 1) & (ids != tokenizer.cls_token_id) & (ids != tokenizer.sep_token_id)
    baselines = torch.where(words, torch.full_like(ids, tokenizer.pad_token_id), ids)
    encoded = {name: torch.cat([tensor, baselines if name == "input_ids" else tensor]) for name, tensor in encoded.items()}
    targets = torch.tensor(labels + [OTHER] * len(labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(150):
        batch = torch.from_numpy(np.random.default_rng(step).choice(len(targets), 64, replace=False))
        loss = model(**{name: tensor[batch] for name, tensor in encoded.items()}, labels=targets[batch]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    held_out, held_out_labels = keyword_texts(100, seed=1, other_share=0.25)
    with torch.no_grad():
        predicted = model(**tokenizer(held_out, padding=True, return_tensors="pt")).logits.argmax(-1)
    assert (predicted.numpy() == np.array(held_out_labels)).mean() > 0.95, "the keyword toy did not train"
    return model
