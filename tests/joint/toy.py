"Toy joint data for the joint tests: the demo's flight and weather requests (`ainative.demo.entity_examples`) as span JSONL."
import json
from pathlib import Path

from ainative.demo import entity_examples, save_tiny_base


def write_toy_jsonl(path: Path, copies: int = 1, intents: bool = True) -> Path:
    "The demo's records as span JSONL at `path` (without intents: NER-style)."
    rows = [r if intents else {k: v for k, v in r.items() if k != "intent"} for r in entity_examples(copies)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_base(folder: Path) -> Path:
    "A tiny random BERT with the real MiniLM tokenizer saved in `folder`: a base model for the joint model's tests."
    return save_tiny_base(folder)
