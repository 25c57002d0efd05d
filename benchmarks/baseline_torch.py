"""Baseline (a) of `bench_serve.py`, "the original design": one torch forward pass per request.

A FastAPI app whose sync `/predict` endpoint (so FastAPI runs it in its threadpool) tokenises the one text,
padded to a fixed `max_length`, and runs the fine-tuned classifier in torch, eager, without batching.

Started by the benchmark as `python -m uvicorn --factory benchmarks.baseline_torch:create_app`, configured by
environment variables:

- `BENCH_MODEL_DIR` (required): a registered version's `model/` folder (safetensors + tokenizer);
- `BENCH_MAX_LENGTH` (default 128): the fixed padded length (`padding="max_length"`);
- `BENCH_MODEL_VERSION` (optional): the version id echoed in responses.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel


class PredictRequest(BaseModel):
    "One utterance to classify (the same body as `ainative serve`'s /predict)."
    text: str


def load_model(model_dir: Path):
    "The classifier (eval mode, safetensors only) and its tokenizer from `model_dir`, offline."
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)
    return model.eval(), tokenizer


def create_app():
    "The baseline FastAPI app: the model is loaded before uvicorn starts listening."
    import torch
    from fastapi import FastAPI
    model_dir = Path(os.environ["BENCH_MODEL_DIR"])
    max_length = int(os.environ.get("BENCH_MAX_LENGTH", "128"))
    version = os.environ.get("BENCH_MODEL_VERSION", model_dir.parent.name)
    model, tokenizer = load_model(model_dir)
    labels = model.config.id2label
    app = FastAPI(title="baseline: torch per request, padded to max_length")

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready", "model_version": version, "max_length": max_length, "padding": "max_length",
                "torch_threads": torch.get_num_threads()}

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict:  # sync on purpose: FastAPI runs it in its threadpool
        encoded = tokenizer(request.text, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            probabilities = torch.softmax(model(**encoded).logits[0].float(), dim=-1)
        best = int(probabilities.argmax())
        return {"intent": labels[best], "confidence": float(probabilities[best]), "model_version": version}

    return app
