"The training entry point under torchrun: two CPU processes (gloo) train one consistent model."
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_torchrun_two_cpu_processes_train_one_consistent_model(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    subprocess.run([str(BIN / "ainative"), "data", "--run-dir", str(run)], check=True, cwd=ROOT, env=env,
                   capture_output=True)
    result = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "ainative"), "train",
         "--run-dir", str(run), "-p", "epochs=2", "-p", "baseline=false", "-p", "batch_size=8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=850)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "reports" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["ddp"]["backend"] == "gloo" and len(metrics["ddp"]["checksums"]) == 2
    assert metrics["ddp"]["consistent"], metrics["ddp"]
    assert metrics["test"]["accuracy"] > 1 / metrics["num_labels"]
    assert sorted(p.name for p in (run / "model").iterdir() if p.suffix == ".safetensors") == ["model.safetensors"]
    assert not (run / "checkpoints").exists()
    assert result.stdout.count('"world_size"') == 1  # the summary is printed once, by the main process only
    summary = json.loads("{\n" + result.stdout.rsplit("\n{\n", 1)[1])
    assert summary["world_size"] == 2 and summary["test_accuracy"] == metrics["test"]["accuracy"]
