"""The server stays slim: answering a prediction imports neither torch nor transformers (nor pandas)."""
from __future__ import annotations

import json
import subprocess
import sys

SERVE_ONE = """
import json, sys
from fastapi.testclient import TestClient
from ainative.api import create_app
from ainative.serving import ServingConfig
with TestClient(create_app(ServingConfig(registry_dir=sys.argv[1], device="auto", reload_interval_s=0))) as client:
    import time
    for _ in range(600):
        if client.get("/ready").status_code == 200: break
        time.sleep(0.1)
    answer = client.post("/predict", json={"text": "where is my parcel?"})
    provider = client.get("/model").json()["provider"]
print(json.dumps({"status": answer.status_code, "provider": provider,
                  "heavy": sorted(m for m in ("torch", "transformers", "pandas", "sklearn") if m in sys.modules)}))
"""


def test_answering_a_prediction_imports_no_torch(demo_registry_dir):
    finished = subprocess.run([sys.executable, "-c", SERVE_ONE, str(demo_registry_dir)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["status"] == 200 and report["heavy"] == []
    assert report["provider"] in {"CPUExecutionProvider", "CUDAExecutionProvider"}
