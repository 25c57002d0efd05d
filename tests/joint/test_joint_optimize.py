"""The optimisation stage on a joint intent + slots run: both heads exported, fp32 parity on intents and tags, INT8 gated
on sentence accuracy (paired McNemar) and slot F1 (paired bootstrap), and the report the server reads.

Nothing here depends on how INT8 rounds on this CPU: the assertions are on structure and consistency, and the gate's
outcome is forced by its margin (any loss accepted), by too few texts (one point cannot be decided on 19), or by
constructed answers."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from ainative.core import RunDir
from ainative.joint import JointIntentSlotModel
from ainative.optimize import (JOINT_ONNX_OUTPUTS, JointVariantScores, OnnxJointRunner, OptimizationConfig,
                               _apply_joint_gates, entity_counts, judge_joint_variant, load_for_export, model_task,
                               optimize_model, paired_bootstrap_f1)
from ainative.tasks import INTENT_SLOTS
from test_joint_training import train_toy

JOINT_METRICS = {"intent_accuracy", "slot_f1", "sentence_accuracy"}
PROBE_KEYS = {"texts", "labels", "reference", "answers", "margin", "alpha", "undecided", "int8_format", "cpu"}


def trained(folder: Path, base: Path, intents: bool = True, epochs: int = 6) -> Path:
    "A toy joint run (six epochs: its tags are learnt, slot F1 near 1): its run folder."
    folder.mkdir(parents=True, exist_ok=True)
    return train_toy(folder, base, intents=intents, epochs=epochs, learning_rate=3e-3).run.path


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, tiny_base_dir) -> Path:
    return trained(tmp_path_factory.mktemp("joint-optimize"), tiny_base_dir)


def optimized(run: Path, folder: Path, **overrides):
    "The stage on a private copy of `run` (no registry), quick settings."
    copy = shutil.copytree(run, folder / "run")
    settings = dict(run_dir=str(copy), bench_seconds=0.05, batch_sizes=(1, 8), probe_size=20)
    return optimize_model(OptimizationConfig(**{**settings, **overrides}))


def test_a_joint_run_is_exported_gated_and_reported_on_both_heads(joint_run, tmp_path):
    result = optimized(joint_run, tmp_path, max_int8_drop=1.0)  # any loss accepted: INT8 kept on every CPU
    report, onnx = result.report, result.run.onnx
    assert report["outputs"] == list(JOINT_ONNX_OUTPUTS)
    files = report["files"]
    assert files == {"onnx fp32": "model.onnx", "onnx int8": "model.int8.onnx"}
    assert all((onnx / file).is_file() for file in files.values())
    assert json.loads((onnx / "report.json").read_text()) == json.loads(json.dumps(report))

    fp32 = report["parity"]["onnx fp32"]  # the stage went on: fp32 agrees with torch on intents and tags
    assert min(fp32["intent_agreement"], fp32["tag_agreement"]) >= OptimizationConfig.min_agreement
    assert fp32["agreement"] == min(fp32["intent_agreement"], fp32["tag_agreement"]) and fp32["examples"] > 0

    assert set(report["test_joint"]) == {"torch fp32", *files}
    for name, scores in report["test_joint"].items():
        assert set(scores) == JOINT_METRICS and all(0 <= scores[key] <= 1 for key in JOINT_METRICS)
        assert report["test_accuracy"][name] == scores["intent_accuracy"]  # test_accuracy: the intent accuracy
    assert report["test_joint"]["torch fp32"]["slot_f1"] > 0.5  # the toy's tags are learnt: the gate judges real answers

    gate = report["gates"]["onnx int8"]
    assert {"sentence_accuracy", "slot_f1"} <= set(gate)
    assert gate["passed"] == (gate["sentence_accuracy"]["passed"] and gate["slot_f1"]["passed"]) == ("onnx int8" in files)
    assert gate["passed"] and gate["verdict"] == "not worse"
    assert gate["reason"].startswith("sentence accuracy ") and "; slot F1 " in gate["reason"]
    slot = gate["slot_f1"]["decision"]
    assert f"on {slot['n']} texts" in gate["slot_f1"]["reason"] and slot["margin"] == 1.0 and slot["resamples"] == 1000
    assert slot["interval"][0] <= slot["difference"] <= slot["interval"][1]

    probes = json.loads((onnx / "probes.json").read_text())  # the classifier's format: the server's host check runs unchanged
    assert report["probes"] == {"file": "probes.json", "texts": len(probes["texts"])} and set(probes) == PROBE_KEYS
    assert set(probes["answers"]) == set(files.values()) and probes["reference"] == "model.onnx"
    assert len(probes["labels"]) == len(probes["texts"]) <= 20 and all(label in (0, 1) for label in probes["labels"])
    assert all(len(answers) == len(probes["texts"]) for answers in probes["answers"].values())

    embeddings = report["monitoring_reference"]["embeddings"]
    assert set(embeddings) == set(files.values())
    assert all(np.load(onnx / file).shape[1] == 32 for file in embeddings.values())  # the tiny base is 32 wide
    assert set(report["sizes_bytes"]) == set(files) and set(report["providers"]) == set(files)
    assert set(result.bench.variant) == {"torch fp32", *files} and "baseline onnx" not in report["speedup_at_32"]
    assert report["serving_default"]["cpu"] in files.values()

    tag_names = json.loads((result.run.model / "config.json").read_text())["tag_labels"]
    runner = OnnxJointRunner(onnx / files["onnx int8"], AutoTokenizer.from_pretrained(result.run.model), tag_names, device="cpu")
    answer = runner.predict(["fly to lima on monday"])
    assert answer.intent_probabilities.shape == (1, 2) and len(answer.tags[0]) == 5
    assert runner.logits(["fly to lima"]).shape == (1, 2) and runner.embeddings(["fly to lima"]).shape == (1, 32)


def test_a_variant_the_gate_cannot_pass_is_dropped_with_its_file(joint_run, tmp_path):
    "One point cannot be decided on the toy's 19 texts: INT8 is undecided even pooled, and dropped."
    result = optimized(joint_run, tmp_path, max_int8_drop=0.01, int8_undecided="pool")
    report, onnx = result.report, result.run.onnx
    gate = report["gates"]["onnx int8"]
    assert not gate["passed"] and gate["verdict"] != "not worse" and not gate["sentence_accuracy"]["passed"]
    assert gate["passed"] == (gate["sentence_accuracy"]["passed"] and gate["slot_f1"]["passed"])
    assert report["files"] == {"onnx fp32": "model.onnx"} and not (onnx / "model.int8.onnx").exists()
    assert "onnx int8" in report["test_joint"]  # scored before it was judged, as the classifier's INT8 is
    assert set(json.loads((onnx / "probes.json").read_text())["answers"]) == {"model.onnx"}
    assert set(report["monitoring_reference"]["embeddings"]) == {"model.onnx"}
    assert set(result.bench.variant) == {"torch fp32", "onnx fp32"} and report["serving_default"]["cpu"] == "model.onnx"


def test_entities_only_data_is_optimised_without_probes(tmp_path, tiny_base_dir):
    run = trained(tmp_path / "train", tiny_base_dir, intents=False, epochs=2)  # the report's shape, not its numbers
    result = optimized(run, tmp_path, max_int8_drop=1.0)
    report = result.report
    assert report["probes"] == {"file": None, "texts": 0} and not (result.run.onnx / "probes.json").exists()
    assert all(scores["intent_accuracy"] is None for scores in report["test_joint"].values())
    assert all(0 <= scores["slot_f1"] <= 1 for scores in report["test_joint"].values())
    assert report["outputs"] == list(JOINT_ONNX_OUTPUTS) and "onnx int8" in report["files"]


def test_load_for_export_reads_the_task_from_the_folder(joint_run):
    model, tokenizer = load_for_export(RunDir(joint_run).model)
    assert isinstance(model, JointIntentSlotModel) and not model.training
    assert model_task(model.config) is INTENT_SLOTS and tokenizer.pad_token_id is not None


TRUTH = [["B-city", "O", "B-day"]] * 60


def counts_losing(every: int) -> np.ndarray:
    "Entity counts of a model that loses the day of one text in `every` (0: none) of `TRUTH`."
    return entity_counts(TRUTH, [["B-city", "O", "O"] if every and i % every == 0 else t for i, t in enumerate(TRUTH)])


def test_the_bootstrap_finds_identical_answers_not_worse():
    same = counts_losing(0)
    decision = paired_bootstrap_f1(same, same, margin=0.01)
    assert decision["verdict"] == "not worse" and decision["interval"][0] <= 0 <= decision["interval"][1]
    assert decision["reference_f1"] == decision["candidate_f1"] == 1.0 and decision["n"] == 60
    assert decision["reason"].startswith("not worse: ") and "60 texts" in decision["reason"]


def test_the_bootstrap_finds_a_clear_loss_worse_and_a_small_sample_undecided():
    worse = paired_bootstrap_f1(counts_losing(0), counts_losing(3), margin=0.01)
    assert worse["verdict"] == "worse" and worse["interval"][1] < -0.01 and worse["difference"] < 0
    assert paired_bootstrap_f1(counts_losing(0), counts_losing(3), margin=0.01) == worse  # a fixed seed
    few = paired_bootstrap_f1(counts_losing(0)[:3], counts_losing(3)[:3], margin=0.01)
    assert few["verdict"] == "undecided" and few["reason"].startswith("undecided: 3 texts")
    assert paired_bootstrap_f1(counts_losing(0), counts_losing(3), margin=1.0)["verdict"] == "not worse"  # any loss
    with pytest.raises(ValueError, match="one row per text"):
        paired_bootstrap_f1(counts_losing(0), counts_losing(0)[:10])


def test_the_gate_needs_both_halves_not_worse():
    right = np.ones(60, dtype=bool)
    sentences = {"test": (right, right), "validation": (right, right)}
    alike = judge_joint_variant(sentences, {"test": (counts_losing(0),) * 2, "validation": (counts_losing(0),) * 2}, margin=0.1)
    assert alike["passed"] and alike["verdict"] == "not worse"
    # sentences alike (as constructed) but slots lost: the slot half alone refuses it
    slots_lost = judge_joint_variant(sentences, {"test": (counts_losing(0), counts_losing(3)),
                                                 "validation": (counts_losing(0), counts_losing(3))}, margin=0.01)
    assert slots_lost["sentence_accuracy"]["verdict"] != "worse" and slots_lost["slot_f1"]["verdict"] == "worse"
    assert not slots_lost["passed"] and slots_lost["verdict"] == "worse"
    blocked = judge_joint_variant(sentences, {"test": (counts_losing(0)[:3], counts_losing(3)[:3]),
                                              "validation": (counts_losing(0), counts_losing(0))}, margin=0.1, undecided="block")
    assert blocked["slot_f1"]["verdict"] == "undecided" and not blocked["passed"]
    assert "slot F1 dropped, int8_undecided=block: undecided" in blocked["reason"]


def test_a_variant_clearly_worse_on_slots_is_dropped(tmp_path):
    (tmp_path / "model.int8.onnx").write_bytes(b"int8")
    variants, predictors = {"onnx fp32": "model.onnx", "onnx int8": "model.int8.onnx"}, {"onnx fp32": None, "onnx int8": None}
    int8_right = np.array([i % 3 != 0 for i in range(60)])  # the texts whose day it loses are wrong sentences
    scores = JointVariantScores({}, {}, {}, {}, {split: {"onnx fp32": np.ones(60, bool), "onnx int8": int8_right}
                                                 for split in ("test", "validation")}, {},
                                {split: {"onnx fp32": counts_losing(0), "onnx int8": counts_losing(3)} for split in ("test", "validation")})
    gates = _apply_joint_gates(scores, variants, predictors, tmp_path, OptimizationConfig())
    gate = gates["onnx int8"]
    assert gate["sentence_accuracy"]["verdict"] == gate["slot_f1"]["verdict"] == "worse" and not gate["passed"]
    assert variants == {"onnx fp32": "model.onnx"} and "onnx int8" not in predictors
    assert not (tmp_path / "model.int8.onnx").exists()
