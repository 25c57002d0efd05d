"""Baseline (b) of `bench_serve.py`: a `transformers.pipeline("text-classification")` call per request.

A FastAPI app whose sync `/predict` endpoint (run in FastAPI's threadpool) calls one pipeline, built once at
start from the fine-tuned model and its tokenizer, on the one text: dynamic padding (a single text is never
padded), truncation at `max_length`, torch eager, no batching across requests.

Started by the benchmark as `python -m uvicorn --factory benchmarks.baseline_pipeline:create_app`, configured by
environment variables:

- `BENCH_MODEL_DIR` (required): a registered version's `model/` folder (safetensors + tokenizer);
- `BENCH_MAX_LENGTH` (default 128): the truncation length;
- `BENCH_MODEL_VERSION` (optional): the version id echoed in responses.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel


class PredictRequest(BaseModel):
    "One utterance to classify (the same body as `ainative serve`'s /predict)."
    text: str


def create_app():
    "The baseline FastAPI app: the pipeline is built before uvicorn starts listening."
    import torch
    from fastapi import FastAPI
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    model_dir = Path(os.environ["BENCH_MODEL_DIR"])
    max_length = int(os.environ.get("BENCH_MAX_LENGTH", "128"))
    version = os.environ.get("BENCH_MODEL_VERSION", model_dir.parent.name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True).eval()
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    app = FastAPI(title="baseline: transformers pipeline per request")

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready", "model_version": version, "max_length": max_length, "padding": "dynamic",
                "torch_threads": torch.get_num_threads()}

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict:  # sync on purpose: FastAPI runs it in its threadpool
        best = classify(request.text, truncation=True, max_length=max_length)[0]
        return {"intent": best["label"], "confidence": float(best["score"]), "model_version": version}

    return app
