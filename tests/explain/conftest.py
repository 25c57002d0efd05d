"""Fixtures of the explainability tests: the real tokenizer, a tiny random BERT, and a tiny BERT trained on a keyword toy."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from ainative.model import load_tokenizer

LABELS = ["refund_request", "order_status", "cancel_order"]
KEYWORDS = {"refund": 0, "parcel": 1, "cancel": 2}  # the one word that decides each toy text's class
OTHER = 3  # the keyword model's class for texts with no keyword, so the all-padding baseline says "other"
FILLER = "the a my your please now today this that order item help me could you with for about it is was".split()


def tiny_bert(tokenizer, seed: int = 0, dropout: float = 0.1, labels: list[str] = LABELS) -> BertForSequenceClassification:
    "A randomly initialised 2-layer, 32-wide BERT with the toy `labels`."
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)}, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config).eval()


def keyword_texts(n: int, seed: int, other_share: float = 0.0) -> tuple[list[str], list[int]]:
    "`n` toy texts: 3-7 filler words and one keyword at a random place (the label), or no keyword (`OTHER`)."
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        if rng.random() < other_share:
            labels.append(OTHER)
        else:
            keyword = rng.choice(list(KEYWORDS))
            words.insert(rng.randint(0, len(words)), keyword)
            labels.append(KEYWORDS[keyword])
        texts.append(" ".join(words))
    return texts, labels


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="session")
def tiny(tokenizer):
    "A random tiny BERT in eval mode."
    return tiny_bert(tokenizer)


@pytest.fixture(scope="session")
def keyword_model(tokenizer):
    "A tiny BERT trained (a few seconds) until its prediction depends on the keyword of the text only."
    model = tiny_bert(tokenizer, seed=0, dropout=0.0, labels=LABELS + ["other"])
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
