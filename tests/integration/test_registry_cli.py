"`ainative registry` as an operator uses it, on a tiny demo run."
import json
import os
import subprocess
import sys
from pathlib import Path

from ainative.demo import make_demo_run

AINATIVE = str(Path(sys.executable).parent / "ainative")


def cli(*args, registry):
    return subprocess.run([AINATIVE, "registry", *args, "--registry-dir", str(registry)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_register_promote_verify_rollback(tmp_path):
    registry = tmp_path / "registry"
    first = make_demo_run(tmp_path / "a", accuracy=0.90, macro_f1=0.89)
    worse = make_demo_run(tmp_path / "b", accuracy=0.80, macro_f1=0.79, test_sha256=json.loads(
        (first.reports / "metrics.json").read_text())["test_sha256"])
    assert json.loads(cli("register", str(first.path), "--alias", "production", registry=registry).stdout)["version"] == "v0001"
    assert cli("register", str(worse.path), registry=registry).returncode == 0
    refused = cli("promote", "v0002", registry=registry)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "force" in refused.stderr
    assert cli("promote", "v0002", "--force", registry=registry).returncode == 0
    listing = cli("list", registry=registry).stdout
    assert "v0002  production" in listing
    assert cli("rollback", registry=registry).returncode == 0
    assert "v0001  production" in cli("list", registry=registry).stdout
    assert cli("verify", registry=registry).stdout.startswith("ok")
    weights = next((registry / "intent-classifier" / "v0001").rglob("model.safetensors"))
    weights.chmod(0o644)
    with open(weights, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00" * 8)
    corrupted = cli("verify", registry=registry)
    assert corrupted.returncode == 1 and "v0001/model/model.safetensors" in corrupted.stdout


def test_missing_registry_is_an_error_and_listings_are_data(tmp_path):
    "Exit 1 for a registry or model that is not there (not an empty listing); `--json` for data; MLflow-style actions."
    registry = tmp_path / "registry"
    missing = cli("list", registry=registry)
    assert missing.returncode == 1 and "There is no registry at" in missing.stderr and missing.stdout == ""
    run = make_demo_run(tmp_path / "a")
    assert cli("register", str(run.path), "--alias", "staging", registry=registry).returncode == 0
    other = cli("list", "--model", "banking77", registry=registry)
    assert other.returncode == 1 and "registered models: ['intent-classifier']" in other.stderr
    rows = json.loads(cli("list", "--json", registry=registry).stdout)
    assert [(row["version"], row["aliases"]) for row in rows] == [("v0001", ["staging"])]
    assert cli("tag", "v0001", "owner=support", registry=registry).returncode == 0
    assert cli("describe", "staging", "smoke model", registry=registry).returncode == 0
    shown = json.loads(cli("show", "v0001", registry=registry).stdout)
    assert shown["tags"] == {"owner": "support"} and shown["description"] == "smoke model"
    assert cli("delete-alias", "staging", registry=registry).returncode == 0
    assert cli("delete-alias", "staging", registry=registry).returncode == 1  # no such alias any more
    history = json.loads(cli("history", "--json", registry=registry).stdout)
    assert [(entry["alias"], entry["action"], entry["to"]) for entry in history] == [("staging", "promote", "v0001"),
                                                                                   ("staging", "delete", None)]
    assert cli("verify", registry=registry).returncode == 0
    assert (registry / "intent-classifier" / "v0001" / "README.md").stat().st_mode & 0o444 == 0o444


def scored_demo_run(folder, correct: str):
    "A demo run whose metrics record which test texts it got right, as a training run's do."
    run = make_demo_run(folder, accuracy=correct.count("1") / len(correct), macro_f1=correct.count("1") / len(correct))
    metrics = json.loads((run.reports / "metrics.json").read_text())
    metrics["test"]["correct"] = correct
    (run.reports / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_the_paired_gate_from_the_command_line(tmp_path):
    "`promote` blocks what 30 texts cannot decide, saying how to go on; `history` shows the numbers a promotion passed on."
    small = tmp_path / "small"
    for name, correct in (("a", "1" * 29 + "0"), ("b", "1" * 28 + "00")):
        assert cli("register", str(scored_demo_run(tmp_path / name, correct).path), *(["--alias", "production"] if name == "a" else []),
                   registry=small).returncode == 0
    refused = cli("promote", "v0002", registry=small)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "30 texts cannot tell a" in refused.stderr and "--force" in refused.stderr, refused.stderr
    large = tmp_path / "large"
    production = "1" * (2826 + 46) + "0" * (45 + 163)
    candidate = "1" * 2826 + "0" * 46 + "1" * 45 + "0" * 163
    assert cli("register", str(scored_demo_run(tmp_path / "c", production).path), "--alias", "production", registry=large).returncode == 0
    assert cli("register", str(scored_demo_run(tmp_path / "d", candidate).path), registry=large).returncode == 0
    assert cli("promote", "v0002", registry=large).returncode == 0
    history = cli("history", registry=large).stdout
    assert ("gate (paired): not worse on 3080 texts of the test set; 45 right only for the candidate, 46 only for production"
            in history and "margin 1.00" in history), history
