"""Helpers of the monitoring tests: synthetic answers with known properties and request-log rows built from them."""
from __future__ import annotations

from typing import Any

import numpy as np

from ainative.monitor import request_row

INTENTS = [f"intent_{i:02d}" for i in range(20)]
START = 1_760_000_000.0  # Thursday 9 October 2025, 08:53:20 UTC: tests never depend on today's date


def answer(intent: str = "intent_00", confidence: float = 0.9, version: str = "v0001") -> dict[str, Any]:
    "A prediction as the server returns it (`Prediction.model_dump()`)."
    return {"intent": intent, "intent_id": INTENTS.index(intent) if intent in INTENTS else 0, "confidence": confidence,
            "truncated": False, "model_version": version, "request_id": "ignored",
            "top_k": [{"intent": intent, "confidence": confidence}]}


def rows_for(request_ids: list[str], at: float = START, step: float = 1.0, version: str = "v0001",
             intent: str = "intent_00", text: str = "where is my card?") -> list[dict[str, Any]]:
    "One single-text request-log row per id, `step` seconds apart from `at`."
    return [request_row(request_id, 0, answer(intent, version=version), text, 0.01, at=at + i * step)
            for i, request_id in enumerate(request_ids)]


def synthetic_answers(n: int, seed: int, shifted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    "`n` probability rows over `INTENTS` and text lengths; `shifted`: 3 intents, lower confidence, longer texts."
    rng = np.random.default_rng(seed)
    intents = rng.choice(3, n) if shifted else rng.choice(len(INTENTS), n)
    confidence = np.maximum(rng.beta(3, 2, n) if shifted else rng.beta(8, 1.2, n), 1 / len(INTENTS) + 0.01)
    probabilities = np.tile(((1 - confidence) / (len(INTENTS) - 1))[:, None], (1, len(INTENTS)))
    probabilities[np.arange(n), intents] = confidence
    lengths = rng.lognormal(np.log(60 if shifted else 40), 0.4, n).astype(int) + 3
    return probabilities, lengths


def synthetic_rows(probabilities: np.ndarray, lengths: np.ndarray, at: float = START, tag: str = "s") -> list[dict[str, Any]]:
    "Request-log rows for synthetic answers, one second apart (texts not kept)."
    rows = []
    for i, (row, length) in enumerate(zip(probabilities, lengths)):
        best = int(row.argmax())
        rows.append(request_row(f"{tag}-{i}", 0, answer(INTENTS[best], float(row[best])), "x" * int(length), 0.01, "none", at=at + i))
    return rows
