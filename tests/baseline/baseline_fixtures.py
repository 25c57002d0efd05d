"""The baseline-family tests' data: a tiny templated dataset on which the TF-IDF baseline wins, and an untrained
tiny transformer (its own module: every test folder has a conftest.py, so `from conftest import` is ambiguous)."""
from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path

import pytest

from ainative.core import RunDir
from ainative.data import read_manifest

MODEL = "intent-classifier"
TEMPLATES = {
    "delivery_status": ["where is my {}", "has my {} shipped yet", "track the {} i ordered", "when will my {} arrive"],
    "refund": ["i want a refund for the {}", "give me my money back for the {}", "refund the {} please",
               "can i return the {} for a refund"],
    "cancel_order": ["cancel my {} order", "please cancel the {}", "i no longer want the {} so cancel it",
                     "stop the order for the {}"],
    "change_address": ["change the delivery address for my {}", "send the {} to a new address",
                       "update my address for the {}", "ship the {} to my office instead"],
}
ITEMS = ["kettle", "laptop", "blue jacket", "phone case", "desk lamp", "coffee grinder", "headphones", "backpack",
         "garden hose", "yoga mat", "toaster", "sofa cushion"]


def write_templated_dataset(path: Path) -> Path:
    "A CSV of 4 intents x 4 templates x 12 items (192 rows): easy, templated phrasing, where TF-IDF shines."
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for (label, templates), item in itertools.product(TEMPLATES.items(), ITEMS):
            for template in templates: writer.writerow([template.format(item), label])
    return path


def save_untrained_transformer(run: RunDir) -> None:
    "A tiny randomly initialised classifier saved where training saves the model: a transformer that learned nothing."
    from ainative.demo import tiny_model, tiny_tokenizer
    label2id = read_manifest(run.data)["label2id"]
    tiny_model(sorted(label2id, key=label2id.get), layers=1, max_positions=128, seed=0).save_pretrained(run.model)
    tiny_tokenizer().save_pretrained(run.model)


def wait_ready(client, timeout: float = 30) -> dict:
    "Poll /ready until 200; fail with the last answer (and /model's reload record) otherwise."
    deadline, answer = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        answer = client.get("/ready")
        if answer.status_code == 200: return answer.json()
        time.sleep(0.1)
    pytest.fail(f"/ready never answered 200: {answer.status_code} {answer.text[:500]}; /model: {client.get('/model').text[:800]}")
