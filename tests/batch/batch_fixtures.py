"""What the batch-scoring tests share: a fast stand-in for a served runtime, input files in the three formats, and the
outputs read back as rows."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ainative.families import Inference

MODEL = "intent-classifier"
FAKE_LABELS = ["refund", "delivery", "cancel"]


class FakeRuntime:
    """A fast stand-in for a served runtime, for the file handling: the label is the text's length modulo 3; the
    confidence falls with the size of the group the text is scored in (as INT8's answers move with the batch-mates);
    a text that starts with '?' is abstained on (fallback label: None)."""
    name, version, variant, provider, labels, abstention = "fake", "v0042", "fake.onnx", "none", FAKE_LABELS, None

    def infer(self, texts: list[str]) -> Inference:
        probabilities = np.full((len(texts), 3), 0.05)
        probabilities[np.arange(len(texts)), [len(text) % 3 for text in texts]] = 0.9 - 0.001 * len(texts)
        return Inference(probabilities, [False] * len(texts), None, [None] * len(texts), [text.startswith("?") for text in texts])

    def predict(self, texts: list[str]):
        inference = self.infer(texts)
        return inference.probabilities, inference.truncated

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "variant": self.variant}


def fake_intent(text: str) -> str:
    "What `FakeRuntime` answers for `text` (when it does not abstain)."
    return FAKE_LABELS[len(text) % 3]


def write_rows(path: Path, rows: list[dict[str, Any]], format: str, row_group_size: int | None = None) -> Path:
    "`rows` written to `path` as CSV (values as text), JSON Lines or Parquet."
    if format == "csv":
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif format == "jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def read_rows(path: Path, format: str) -> list[dict[str, Any]]:
    "The rows of an output: CSV as text, JSON Lines and Parquet as their values."
    if format == "csv":
        with open(path, newline="", encoding="utf-8") as file: return list(csv.DictReader(file))
    if format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    import pyarrow.parquet as pq
    return pq.read_table(path).to_pylist()


def sample_rows(count: int) -> list[dict[str, Any]]:
    "`count` rows with an id, a text (commas, quotes, a newline, non-ASCII, some abstained on) and a note."
    texts = ["I want a refund", 'where is "my" parcel, please', "cancel\nmy order", "¿dónde está mi paquete?", "?? unsure",
             "card not arrived yet", "x"]
    return [{"id": i, "text": f"{texts[i % len(texts)]} {i}", "note": f"n{i}"} for i in range(count)]
