"The `ainative` command as a user runs it: the papermill pipeline and the data stage, in real subprocesses."
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ainative.pipeline import SMOKE_MODEL_NAME, STAGES, runs_in_pipeline
from ainative.registry import RegistryConfig

ROOT = Path(__file__).resolve().parents[2]
AINATIVE = str(Path(sys.executable).parent / "ainative")


def run_cli(*args, cwd=ROOT, env=None, timeout=600):
    return subprocess.run([AINATIVE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_smoke_pipeline_runs_notebooks_through_papermill(tmp_path):
    "`ainative pipeline` (what `make run` runs) executes the stage notebooks into the run directory, records every parameter, and the README's serving example then answers."
    run_dir, registry_dir = tmp_path / "run", tmp_path / "registry"  # a registry of its own, as after a first `make run`
    assert "\t$(BIN)/ainative pipeline $(ARGS)\n" in (ROOT / "Makefile").read_text()  # the README's quick start, `make run`
    result = run_cli("pipeline", "--run-dir", str(run_dir), "-p", "seed=7", timeout=1800,  # minutes on a busy 2-core CPU
                     env={"AINATIVE_REGISTRY_DIR": str(registry_dir)})
    assert result.returncode == 0, result.stderr
    assert (run_dir / "notebooks" / "01_data.ipynb").exists()
    manifest = json.loads((run_dir / "data" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 210, "validation": 60, "test": 30}
    assert manifest["params"]["seed"] == 7
    assert json.loads((run_dir / "params.json").read_text())["data"]["seed"] == 7
    assert (run_dir / "reports" / "label_distribution.png").stat().st_size > 1000
    metrics = json.loads((run_dir / "reports" / "metrics.json").read_text())
    assert metrics["data_version"] == manifest["version"] and metrics["test"]["examples"] == 30
    assert (run_dir / "reports" / "training_curves.png").exists() and (run_dir / "model" / "model.safetensors").exists()
    registry = registry_dir / SMOKE_MODEL_NAME  # never the production model's name
    production = json.loads((registry / "aliases.json").read_text())["production"]
    assert json.loads((registry / production / "manifest.json").read_text())["data_version"] == manifest["version"]
    assert not (registry.parent / RegistryConfig.model_name).exists()
    # a pipeline runs the stages, not the chapters' demonstrations: none of their made-up errors, no kernel noise
    for demo_output in ("Refusing to promote", "pickle-based", "the file has columns", "is not a valid alias",
                        "failed verification", "Traceback", "TCP without encryption", "TqdmWarning", "{'loss'"):
        assert demo_output not in result.stdout + result.stderr, demo_output
    for notebook in STAGES.values():
        executed = nbformat.read(run_dir / "notebooks" / notebook, as_version=4).cells
        assert all(runs_in_pipeline(cell) or i == 0 or "injected-parameters" in cell.metadata.get("tags", [])
                   for i, cell in enumerate(executed)), notebook
    # a pipeline you can watch: each stage numbered, training's progress as lines; stdout is the summary alone
    assert all(f"stage {i}/{len(STAGES)} {stage} done" in result.stderr for i, stage in enumerate(STAGES, 1))
    assert re.search(r"training: step \d+/\d+ \(100%\), epoch [\d.]+/4, .+ spent, 0:00 left", result.stderr)
    assert result.stdout.startswith(f"run directory: {run_dir}") and "serve it: ainative serve --model " \
        f"{SMOKE_MODEL_NAME} --alias production" in result.stdout
    answer = run_readme_serving_example(registry_dir)
    assert answer["model_version"] == production and answer["intent"] in manifest["label2id"], answer


def readme_block(heading: str) -> list[str]:
    "The lines of the first bash block under README.md's `heading`."
    section = (ROOT / "README.md").read_text().split(f"\n## {heading}\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()


def run_readme_serving_example(registry_dir: Path) -> dict:
    "Run the README's serving snippet as written (its own port swapped for a free one): the server, the wait, the curl."
    import socket
    start, *commands = readme_block("Serving")
    assert start.startswith(".venv/bin/ainative serve") and start.endswith(" &"), start
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "AINATIVE_REGISTRY_DIR": str(registry_dir), "PATH": f"{Path(AINATIVE).parent}:{os.environ['PATH']}"}
    server = subprocess.Popen(start[: -len(" &")].replace(".venv/bin/", "").replace("8000", port).split(), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        script = "\n".join(line.replace("8000", port) for line in commands if not line.startswith("#"))
        result = subprocess.run(["timeout", "120", "bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    finally:
        server.terminate()
        server.wait(30)


def test_pipeline_failure_names_the_notebook_and_keeps_it(tmp_path):
    "A failing stage stops the pipeline with a clear message, and its executed notebook is kept."
    run_dir = tmp_path / "run"
    result = run_cli("pipeline", "--run-dir", str(run_dir), "-p", "dataset=missing.csv")
    assert result.returncode == 1  # a failure at run time (2 is for usage errors)
    assert "Stage 'data' failed" in result.stderr and "DataFileNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr
    assert (run_dir / "notebooks" / "01_data.ipynb").exists()
    assert not (run_dir / "data").exists()


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path):
    result = run_cli("pipeline", "--run-dir", str(tmp_path / "run"), "-p", "epochz=3")
    assert result.returncode == 2 and "epochz" in result.stderr and "Valid: data: [" in result.stderr
    assert not (tmp_path / "run" / "notebooks").exists()


@pytest.mark.parametrize("dataset", ["banking77", "clinc150"])
def test_data_command_on_named_datasets(dataset, tmp_path):
    "`ainative data` prepares the real benchmarks from the data directory, offline."
    data_dir = os.environ.get("AINATIVE_DATA_DIR") or str(ROOT.parent / "shared" / "data")
    if not Path(data_dir, dataset).is_dir():
        if os.environ.get("CI"): pytest.fail(f"CI must provide {dataset} under {data_dir}")
        pytest.skip(f"no {dataset} under {data_dir}")
    result = run_cli("data", "--dataset", dataset, "--run-dir", str(tmp_path / "run"),
                     env={"AINATIVE_DATA_DIR": data_dir, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["num_labels"] == {"banking77": 77, "clinc150": 151}[dataset]
    assert summary["version"].startswith("data-")


def test_resume_refuses_damaged_upstream_artifacts(tmp_path):
    "`--from` checks the earlier stages' artifacts against their manifests before running anything."
    run_dir = tmp_path / "run"
    assert run_cli("data", "--run-dir", str(run_dir)).returncode == 0
    no_model = run_cli("pipeline", "--run-dir", str(run_dir), "--from", "registry")
    assert no_model.returncode == 1 and "Cannot resume at 'registry'" in no_model.stderr and "no trained model" in no_model.stderr
    (run_dir / "data" / "test.parquet").write_bytes(b"tampered")
    tampered = run_cli("pipeline", "--run-dir", str(run_dir), "--from", "training")
    assert tampered.returncode == 1 and "test.parquet" in tampered.stderr and "Traceback" not in tampered.stderr
    assert not (run_dir / "notebooks").exists()


def test_pipeline_parameters_reach_the_data_stage(tmp_path):
    "`-p` reaches every DataConfig field through papermill: separate train and test files, a validation fraction."
    rows = [(f"{word} request number {i}", label) for label, word in (("refund", "money"), ("delivery", "parcel"))
            for i in range(24)]
    train, test = rows[:20] + rows[24:44], rows[20:24] + rows[44:]
    for name, part in (("train.csv", train), ("test.csv", test)):
        (tmp_path / name).write_text("utterance,intent\n" + "".join(f"{text},{label}\n" for text, label in part))
    run_dir = tmp_path / "run"
    result = run_cli("pipeline", "--run-dir", str(run_dir), "--to", "data", "-p", f"dataset={tmp_path / 'train.csv'}",
                     "-p", f"test_file={tmp_path / 'test.csv'}", "-p", "validation_fraction=0.25",
                     "-p", "text_column=utterance", "-p", "label_column=intent", "-p", "encoding=utf-8")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run_dir / "data" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 30, "validation": 10, "test": 8}
    recorded = json.loads((run_dir / "params.json").read_text())["data"]
    assert recorded["test_file"] == str(tmp_path / "test.csv") and recorded["validation_fraction"] == 0.25
    assert not (run_dir / "model").exists()  # --to data: nothing after the data stage ran


def test_pipeline_runs_outside_the_checkout_with_paths_relative_to_where_it_started(tmp_path):
    "From an empty folder the pipeline still finds its stage notebooks, and `-p dataset=toy.csv` means ./toy.csv there."
    rows = [(f"{word} request number {i}", label) for label, word in (("refund", "money"), ("delivery", "parcel"))
            for i in range(30)]
    (tmp_path / "toy.csv").write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    result = run_cli("pipeline", "--run-dir", "run", "--to", "data", "-p", "dataset=toy.csv", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)  # --json: stdout is the outcome alone
    assert outcome["run_dir"] == str(tmp_path / "run") and outcome["stages"] == ["data"] and outcome["counts"]["train"] == 42
    assert json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())["source"]["name"] == "toy.csv"
