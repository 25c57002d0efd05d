"""`ainative predict` on a real registry version (the demo's, INT8 on this CPU), through the command line: the answers are
the server's `/predict/batch` answers (the FastAPI app in this process) to the last digit, the version and model in every
row; sharded runs concatenate to the single run on the INT8 model; a version's abstention policy and fallback label are
applied as the server applies them; an INT8 variant that fails its probes on this host is replaced by fp32, as in the
server (or refused, with AINATIVE_INT8_HOST_CHECK=refuse)."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ainative.abstention import AbstentionPolicy, save_policy
from ainative.api import create_app
from ainative.cli import main
from ainative.data import shipped_dataset_path
from ainative.families import RuntimeOptions
from ainative.registry import Registry
from ainative.serving import ServingConfig, open_version, probe_answers
from batch_fixtures import MODEL, read_rows

REQUEST_TEXTS = 64  # texts per /predict/batch request: two of the server's batches of 32, as predict's windows


@pytest.fixture(scope="module")
def texts_csv(tmp_path_factory) -> Path:
    "The bundled dataset's texts (300) with an id, as a CSV file to score."
    with open(shipped_dataset_path(), newline="", encoding="utf-8") as file:
        texts = [row["text"] for row in csv.DictReader(file)]
    path = tmp_path_factory.mktemp("batch-served") / "texts.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text"])
        writer.writerows([f"t{i}", text] for i, text in enumerate(texts))
    return path


def predict(capsys, *argv: str) -> tuple[int, dict | None, str]:
    "`ainative predict *argv` in this process: exit status, the summary it printed, and its stderr."
    capsys.readouterr()
    status = main(["predict", *argv, "--quiet"])
    out, err = capsys.readouterr()
    return status, json.loads(out) if status == 0 else None, err


def served_answers(registry_dir: Path, texts: list[str], alias: str = "production") -> tuple[list[dict], dict]:
    "The server's /predict/batch answers to `texts`, sent in order, `REQUEST_TEXTS` a request; and its /model."
    config = ServingConfig(registry_dir=str(registry_dir), alias=alias, reload_interval_s=0, request_log=False)
    with TestClient(create_app(config)) as client:
        deadline = time.monotonic() + 120
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.1)
        answers = []
        for start in range(0, len(texts), REQUEST_TEXTS):
            response = client.post("/predict/batch", json={"texts": texts[start:start + REQUEST_TEXTS]})
            assert response.status_code == 200, response.text
            answers += response.json()["predictions"]
        return answers, client.get("/model").json()


def assert_same_answers(rows: list[dict], answers: list[dict]):
    "The rows of a CSV output answer as the server did, to the last digit."
    assert len(rows) == len(answers)
    for row, answer in zip(rows, answers):
        assert row["intent"] == (answer["intent"] or "") and row["model_version"] == answer["model_version"]
        assert float(row["confidence"]) == answer["confidence"] and row["abstained"] == str(answer["abstained"]).lower()


def test_predict_answers_as_the_server_does(capsys, demo_folder, texts_csv, tmp_path):
    registry_dir = demo_folder / "registry"
    output = tmp_path / "scored.csv"
    status, summary, _ = predict(capsys, str(texts_csv), "--output", str(output), "--registry-dir", str(registry_dir))
    assert status == 0
    rows = read_rows(output, "csv")
    answers, model = served_answers(registry_dir, [row["text"] for row in rows])
    assert_same_answers(rows, answers)
    assert {row["model"] for row in rows} == {MODEL} and [row["id"] for row in rows] == [f"t{i}" for i in range(len(rows))]
    assert (summary["rows"], summary["answered"], summary["errors"]) == (len(rows), len(rows), 0)
    assert (summary["model"], summary["model_version"], summary["variant"]) == (MODEL, model["version"], model["variant"])
    if model["variant"] == "model.int8.onnx":  # INT8 serves on this CPU: checked on this host first, as the server checks it
        assert summary["int8_host_check"] == {"outcome": "not worse", "variant_asked": "model.int8.onnx",
                                              "variant_served": "model.int8.onnx", "fell_back": False}


def test_shards_concatenate_to_the_single_run_on_the_served_model(capsys, demo_folder, texts_csv, tmp_path):
    "On the INT8 model, whose answers move with their batch-mates: the parts are whole batches, so nothing moves."
    flags = ["--registry-dir", str(demo_folder / "registry")]
    assert predict(capsys, str(texts_csv), "-o", str(tmp_path / "whole.csv"), *flags)[0] == 0
    parts = b""
    for index in range(3):
        part = tmp_path / "parts" / f"part-{index}.csv"
        status, summary, _ = predict(capsys, str(texts_csv), "-o", str(part), "--shard", f"{index}/3", "--chunk-rows", "50", *flags)
        assert status == 0 and summary["rows"] > 0
        parts += part.read_bytes() if index == 0 else part.read_bytes().split(b"\n", 1)[1]
    assert parts == (tmp_path / "whole.csv").read_bytes()


@pytest.fixture(scope="module")
def registry(demo_folder) -> Registry:
    return Registry(demo_folder / "registry")


def register_run(registry: Registry, run: Path, probes: dict | None = None) -> str:
    "The demo run registered again as a new version (`production` stays), with `probes` as its onnx/probes.json if given."
    path = run / "onnx" / "probes.json"
    original = path.read_bytes()
    if probes is not None: path.write_text(json.dumps(probes), encoding="utf-8")
    try: return registry.register(run)
    finally: path.write_bytes(original)


def test_the_versions_abstention_policy_and_fallback_label_are_applied(capsys, demo_folder, registry, texts_csv, tmp_path):
    version = register_run(registry, demo_folder / "run")
    flags = ["--registry-dir", str(registry.root), "--alias", version]
    assert predict(capsys, str(texts_csv), "-o", str(tmp_path / "before.csv"), *flags)[0] == 0
    before = read_rows(tmp_path / "before.csv", "csv")
    confidences = np.sort([float(row["confidence"]) for row in before])
    middle = len(confidences) // 4 + int(np.argmax(np.diff(confidences[len(confidences) // 4: 3 * len(confidences) // 4])))
    threshold = float(confidences[middle] + confidences[middle + 1]) / 2  # a wide gap: no text sits on the threshold
    label2id = registry.show(MODEL, version)["labels"]["label2id"]
    policy = AbstentionPolicy("threshold", sorted(label2id, key=label2id.get), score="max_probability", threshold=threshold,
                              fallback_label="human_handover", target_precision=0.9)
    save_policy(policy, tmp_path / "abstention")
    registry.attach(MODEL, version, "abstention", tmp_path / "abstention", info={"threshold": threshold})
    status, summary, _ = predict(capsys, str(texts_csv), "-o", str(tmp_path / "after.csv"), *flags)
    after = read_rows(tmp_path / "after.csv", "csv")
    declined = [float(row["confidence"]) < threshold for row in before]
    assert status == 0 and 0 < sum(declined) < len(before) and summary["abstained"] == sum(declined)
    for row, earlier, abstains in zip(after, before, declined):
        assert row["abstained"] == ("true" if abstains else "false") and row["confidence"] == earlier["confidence"]
        assert row["intent"] == ("human_handover" if abstains else earlier["intent"])
    answers, _ = served_answers(registry.root, [row["text"] for row in after], alias=version)
    assert_same_answers(after, answers)


@pytest.fixture(scope="module")
def failing_version(demo_folder, registry) -> str:
    "A version whose probes INT8 answers all wrong on this host (fp32 all right): the server serves it as fp32."
    int8 = open_version(registry, MODEL, "production", RuntimeOptions(variant="model.int8.onnx", device="cpu"))
    stored = json.loads((demo_folder / "run" / "onnx" / "probes.json").read_text(encoding="utf-8"))
    labels = ((probe_answers(int8, stored["texts"]) + 1) % len(int8.labels)).tolist()
    relabelled = {**stored, "labels": labels, "answers": {**stored["answers"], stored["reference"]: labels}, "margin": 0.05}
    return register_run(registry, demo_folder / "run", relabelled)


def test_int8_that_fails_its_probes_here_is_replaced_by_fp32(capsys, caplog, monkeypatch, registry, failing_version, texts_csv,
                                                             tmp_path):
    flags = ["--registry-dir", str(registry.root), "--alias", failing_version, "--device", "cpu"]
    monkeypatch.setenv("AINATIVE_VARIANT", "model.int8.onnx")  # as a server configured for INT8 would be
    status, summary, _ = predict(capsys, str(texts_csv), "-o", str(tmp_path / "asked-int8.csv"), *flags)
    assert status == 0 and summary["variant"] == "model.onnx" and summary["model_version"] == failing_version
    assert summary["int8_host_check"] == {"outcome": "worse", "variant_asked": "model.int8.onnx", "variant_served": "model.onnx",
                                          "fell_back": True}
    assert f"INT8 host check of intent-classifier {failing_version} (worse): serving model.onnx instead of model.int8.onnx" in caplog.text
    monkeypatch.setenv("AINATIVE_VARIANT", "model.onnx")
    assert predict(capsys, str(texts_csv), "-o", str(tmp_path / "fp32.csv"), *flags)[0] == 0
    assert (tmp_path / "asked-int8.csv").read_bytes() == (tmp_path / "fp32.csv").read_bytes()  # fp32's answers, exactly


def test_refuse_stops_before_anything_is_written(capsys, monkeypatch, registry, failing_version, texts_csv, tmp_path):
    monkeypatch.setenv("AINATIVE_VARIANT", "model.int8.onnx")
    monkeypatch.setenv("AINATIVE_INT8_HOST_CHECK", "refuse")
    status, _, err = predict(capsys, str(texts_csv), "-o", str(tmp_path / "out.csv"), "--registry-dir", str(registry.root),
                             "--alias", failing_version, "--device", "cpu")
    assert status == 1 and "model.int8.onnx is not served on this host" in err and "fix:" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
