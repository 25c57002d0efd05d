"""Toy texts for the explainability tests (a module with a unique name, importable from any test); the tiny models come from `ainative.demo`."""
from __future__ import annotations

import random


LABELS = ["refund_request", "order_status", "cancel_order"]
KEYWORDS = {"refund": 0, "parcel": 1, "cancel": 2}  # the one word that decides each toy text's class
OTHER = 3  # the keyword model's class for texts with no keyword, so the all-padding baseline says "other"
FILLER = "the a my your please now today this that order item help me could you with for about it is was".split()


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
