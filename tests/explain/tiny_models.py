"""Tiny models and toy texts for the explainability tests (a module with a unique name, importable from any test)."""
from __future__ import annotations

import random

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

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
