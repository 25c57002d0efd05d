"""What the flywheel tests share besides fixtures: a small keyword dataset a tiny model learns in seconds, the tiny
training settings, and the slice of traffic the champion gets wrong."""
from __future__ import annotations

import csv
import itertools
from pathlib import Path

from ainative.demo import DEMO_LABELS

ITEMS = ("kettle", "laptop", "jacket", "book", "phone", "lamp", "chair", "blender", "watch", "camera")
TEMPLATES = {
    "cancel_order": ("please cancel my {item} order {tail}", "i want to cancel the {item} i bought {tail}", "stop my order for the {item} {tail}"),
    "delivery_status": ("where is my {item} {tail}", "when will the {item} arrive {tail}", "track the delivery of my {item} {tail}"),
    "refund": ("i want my money back for the {item} {tail}", "refund the {item} please {tail}", "how do i get a refund for my {item} {tail}")}
TAILS = ("", "today", "asap", "thanks")
# The champion's training: a tiny, randomly initialised BERT (`ainative.demo.tiny_model`) learns the keyword dataset in
# seconds on 2 busy cores, where the real base model would take minutes.
TINY_TRAINING = {"epochs": 8.0, "learning_rate": 1e-2, "head_lr_multiplier": 1.0, "batch_size": 16, "max_length": 32,
                 "early_stopping_patience": 10, "baseline": False, "logging_steps": 1000}
# The challenger starts from the champion's weights: a gentler rate keeps what the champion knows while it learns the slice.
CHALLENGER_TRAINING = {"learning_rate": 3e-3, "epochs": 4.0}
FAST_OPTIMIZATION = {"bench_seconds": 0.02, "batch_sizes": (1, 8), "max_int8_drop": 1.0}

# A kind of question the dataset never shows: vouchers. Users will say which intent it is.
SLICE_TEXTS = [f"{opening}my {thing} {problem}".strip() for opening, thing, problem in itertools.product(
    ["", "hi, ", "urgent: "], ["gift voucher", "voucher code", "promo voucher"],
    ["was rejected at checkout", "does not apply to my basket", "shows as expired", "is not accepted"])]


def write_keyword_dataset(path: Path) -> Path:
    "A CSV of customer-service texts whose intent a keyword gives away: 120 per demo label."
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for label in DEMO_LABELS:
            for template, item, tail in itertools.product(TEMPLATES[label], ITEMS, TAILS):
                writer.writerow([template.format(item=item, tail=tail).strip(), label])
    return path


def tiny_base_model(folder: Path) -> Path:
    "A folder holding a randomly initialised tiny BERT with the demo labels and the bundled tokenizer: a base model."
    from ainative.demo import tiny_model, tiny_tokenizer
    tokenizer = tiny_tokenizer()
    tiny_model(DEMO_LABELS, vocab_size=len(tokenizer), layers=1, hidden_size=32, intermediate_size=64, max_positions=64,
               seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
