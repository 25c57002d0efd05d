"""The server imports ainative.monitor on its request path: logging and feedback load no pandas, torch or statistics stack."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "torch", "transformers", "sklearn", "scipy", "matplotlib")

USE_THE_STORE = """
import json, sys, tempfile
from ainative.monitor import MonitorConfig, RequestStore, default_database_url, request_row
imported = sorted(m for m in %r if m in sys.modules)
store = RequestStore(default_database_url(tempfile.mkdtemp(), "intent-classifier"))
answer = {"intent": "a", "confidence": 0.9, "model_version": "v0001", "top_k": [{"intent": "a", "confidence": 0.9}]}
store.write_requests([request_row("r", 0, answer, "hello", 0.01)])
store.add_feedback([{"request_id": "r", "label": "a"}], {"a"})
store.recent(last_n=10); store.feedback_accuracy("week"); store.apply_retention(); store.window(MonitorConfig())
print(json.dumps({"on_import": imported, "after_use": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY, HEAVY)


def test_import_and_store_use_load_nothing_heavy():
    finished = subprocess.run([sys.executable, "-c", USE_THE_STORE], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report == {"on_import": [], "after_use": []}
