"""Fixtures of the registry tests: a throw-away registry, and tiny demo runs (random model, real tokenizer)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ainative.demo import make_demo_run
from ainative.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
MODEL = "intent-classifier"


@pytest.fixture(scope="session")
def demo_run_template(tmp_path_factory) -> Path:
    "One tiny demo run, built once; tests get copies of it."
    return make_demo_run(tmp_path_factory.mktemp("template") / "run").path


@pytest.fixture
def registry_root(tmp_path, monkeypatch) -> Path:
    "A fresh registry folder, also set as $AINATIVE_REGISTRY_DIR (subprocesses inherit it)."
    root = tmp_path / "registry"
    monkeypatch.setenv("AINATIVE_REGISTRY_DIR", str(root))
    return root


@pytest.fixture
def registry(registry_root) -> Registry:
    "A registry at the default root, which the environment points at `registry_root`."
    return Registry()


@pytest.fixture
def make_run(demo_run_template, tmp_path):
    "Make a copy of the demo run reporting other test metrics and, optionally, another test set."
    made = []

    def make(accuracy: float = 0.90, macro_f1: float = 0.88, test_sha256: str | None = None) -> Path:
        run = tmp_path / f"run-{len(made)}"
        shutil.copytree(demo_run_template, run)
        metrics_path = run / "reports" / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        metrics["test"].update(accuracy=accuracy, macro_f1=macro_f1)
        if test_sha256:
            metrics["test_sha256"] = test_sha256
            data_path = run / "data" / "manifest.json"
            data = json.loads(data_path.read_text())
            data["split_sha256"]["test"] = test_sha256
            data_path.write_text(json.dumps(data))
        metrics_path.write_text(json.dumps(metrics))
        made.append(run)
        return run

    return make


@pytest.fixture
def start_python():
    "Start `python -c code args...` in the project root (environment inherited); every process is reaped at the end."
    processes = []

    def start(code: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=os.environ.copy(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()



@pytest.fixture
def kill_when_ready():
    "SIGKILL `process` as soon as it creates the file `ready` (it pauses there); fail if it ends first."

    def kill(process: subprocess.Popen, ready: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                pytest.fail(f"the process ended (rc {process.returncode}) before it could be killed: {process.communicate()}")
            assert time.monotonic() < deadline, "the process never reached the point where it is killed"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL

    return kill
