"""Helpers of the distillation tests: tiny BERT classifiers built from a BertConfig here (no downloads) and the keyword dataset."""
from __future__ import annotations

import itertools
from pathlib import Path


KEYWORDS = {"cancel_order": "cancel", "delivery_status": "parcel", "refund": "refund"}
OPENINGS = ("please", "hi,", "i need to", "can you", "urgent:", "hello, i want to")
ITEMS = ("kettle", "laptop", "jacket", "book", "phone", "lamp", "chair", "watch")
LABEL2ID = {label: i for i, label in enumerate(sorted(KEYWORDS))}


def tiny_bert(num_layers: int = 4, seed: int = 0, label2id: dict[str, int] = LABEL2ID):
    "A randomly initialised BertForSequenceClassification of `num_layers` layers over the bundled tokenizer's vocabulary."
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ainative.demo import tiny_tokenizer
    config = BertConfig(vocab_size=len(tiny_tokenizer()), hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=len(label2id),
                        id2label={i: label for label, i in label2id.items()}, label2id=dict(label2id))
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval()


def save_tiny_bert(folder: Path, **kwargs) -> Path:
    "`tiny_bert(**kwargs)` and the tokenizer saved in `folder`."
    from ainative.demo import tiny_tokenizer
    tiny_bert(**kwargs).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
