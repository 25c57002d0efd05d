"""The abstention stage on a tiny real pipeline (data with out-of-scope rows -> training -> registry -> ONNX):
the policy travels with the version, the server-side functions reproduce the stage's figures, and a run without
out-of-scope rows gets no policy at all."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ainative.abstention import AbstentionConfig, ScoredSplit, evaluate_policy, load_policy, run_abstention, score_texts
from ainative.core import CapabilityError, RunDir, atomic_write_json, softmax
from ainative.data import DataConfig, load_splits, prepare_data, read_manifest
from ainative.demo import tiny_model
from ainative.families import register_family
from ainative.model import load_tokenizer
from ainative.optimize import OnnxRunner, OptimizationConfig, optimize_model
from ainative.registry import Registry, RegistryConfig, register_model
from ainative.training import TrainingConfig, train_model
from ainative.transformer import TransformerFamily

INTENTS = {"refund": "please refund my {}", "delivery": "where is my {} now", "cancel": "cancel the order of my {}"}
ITEMS = ["shoes", "phone", "lamp", "desk", "chair", "book", "watch", "bag", "coat", "mug"]
OUT_OF_SCOPE = ["what is the capital of {}", "play a song about {}", "how tall is mount {}"]
PLACES = ["peru", "chile", "nepal", "kenya", "fiji", "oman", "laos", "mali", "chad", "togo"]
NAME = "abstention-tiny"


def tiny_dataset(folder, with_oos: bool = True):
    rows = [(template.format(item), label) for label, template in INTENTS.items() for item in ITEMS]
    if with_oos: rows += [(template.format(place), "oos") for template in OUT_OF_SCOPE for place in PLACES]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(folder / "tiny.csv", index=False)
    return str(folder / "tiny.csv")


def tiny_pipeline(folder, out_of_scope: str, with_oos: bool = True):
    "data -> 1 epoch of training -> registry -> ONNX (INT8 served), as the pipeline runs them; returns the run folder."
    run_dir, registry_dir = str(folder / "run"), str(folder / "registry")
    prepare_data(DataConfig(dataset=tiny_dataset(folder, with_oos), run_dir=run_dir, out_of_scope=out_of_scope))
    train_model(TrainingConfig(run_dir=run_dir, epochs=1, baseline=False, batch_size=8))
    register_model(RegistryConfig(run_dir=run_dir, registry_dir=registry_dir, model_name=NAME))
    optimize_model(OptimizationConfig(run_dir=run_dir, model_name=NAME, bench_seconds=0.02, batch_sizes=(8,),
                                      max_int8_drop=1.0))
    return folder / "run", Registry(registry_dir)


@pytest.fixture(scope="module", params=["class", "holdout"])
def staged(request, module_tmp_path):
    (module_tmp_path / request.param).mkdir()
    run, registry = tiny_pipeline(module_tmp_path / request.param, request.param)
    result = run_abstention(AbstentionConfig(run_dir=str(run), target_precision=0.9))
    return request.param, run, registry, result


def test_strategy_follows_the_data_option(staged):
    mode, run, registry, result = staged
    assert result is not None
    if mode == "class":
        assert result.policy.oos_label == "oos" and result.policy.strategy in ("oos_class", "oos_class+threshold")
        assert set(result.table.strategy) == {"oos_class", "oos_class+threshold"}
    else:
        assert "oos" not in result.policy.labels and result.policy.strategy == "threshold"
        assert set(result.table.strategy) == {"threshold"}
        assert set(result.table.score) == {"max_probability", "energy", "max_logit", "centroid_similarity"}
    assert result.table.chosen.sum() == 1
    assert (run / "reports" / "abstention_tradeoff.png").stat().st_size > 10_000


def test_the_policy_travels_with_the_version(staged):
    mode, run, registry, result = staged
    version = registry.resolve(NAME, "production")
    assert "abstention" in registry.attachments(NAME, version.name)
    assert registry.verify(NAME, version.name) == []
    policy = load_policy(version)
    assert policy.describe() == result.policy.describe()
    calibration = version / "calibration" / "calibration.json"  # no explainability stage here: temperature 1
    assert not calibration.exists() and policy.temperature == 1.0
    report = json.loads((run / "reports" / "abstention.json").read_text())
    served = json.loads((version / "onnx" / "report.json").read_text())["serving_default"]["cpu"]  # the faster on this machine
    assert report["attachment"] == f"attached to {NAME} {version.name}" and report["source"]["variant"] == served


def test_the_stored_policy_reproduces_the_reported_test_figures(staged):
    "What a server computes (ONNX logits, calibrated probabilities, embeddings) through the loaded policy gives the stage's figures."
    mode, run, registry, result = staged
    version = registry.resolve(NAME, "production")
    policy = load_policy(version)
    test = load_splits(run / "data", out_of_scope=True)["test"]
    runner = OnnxRunner(version / "onnx" / "model.int8.onnx", __import__("ainative.model").model.load_tokenizer(str(version / "model")),
                        "cpu", max_length=64)
    logits, embeddings = score_texts(runner, test.text.tolist())
    split = ScoredSplit(logits, softmax(logits, policy.temperature), embeddings, test.label.to_numpy(dtype=object))
    assert evaluate_policy(policy, split, "oos") == result.policy.evaluation["test"]
    abstained = policy.abstains(logits, softmax(logits, policy.temperature), embeddings, policy.labels)
    assert abstained.dtype == bool and abstained.shape == (len(test),)


def test_a_second_run_leaves_the_attached_policy_alone(staged):
    mode, run, registry, result = staged
    again = run_abstention(AbstentionConfig(run_dir=str(run), target_precision=0.5))
    assert "already has an abstention policy" in again.report["attachment"]
    assert load_policy(registry.resolve(NAME, "production")).target_precision == 0.9


def test_without_out_of_scope_rows_nothing_is_written(tmp_path):
    run, registry = tiny_pipeline(tmp_path, "class", with_oos=False)
    assert run_abstention(AbstentionConfig(run_dir=str(run))) is None
    version = registry.resolve(NAME, "production")
    assert load_policy(version) is None and "abstention" not in registry.attachments(NAME, version.name)
    assert not (run / "abstention").exists() and not (run / "reports" / "abstention.json").exists()
    assert "abstention" not in json.loads((run / "params.json").read_text())


# The stage asks the version's family what it can do (chapter 2d), never its name. The tests' own families are stored
# like the transformer (so a run's model registers) and able to do less.

class ProbabilitiesOnly(TransformerFamily):
    "A family with calibrated probabilities only (as the TF-IDF baseline): no logits, no embeddings."
    name, capabilities = "test-probabilities-only", frozenset({"onnx"})


class NoEmbeddings(TransformerFamily):
    "A family with logits but no sentence embeddings."
    name, capabilities = "test-no-embeddings", frozenset({"logits", "onnx", "int8"})


PROBABILITIES_ONLY, NO_EMBEDDINGS = register_family(ProbabilitiesOnly()), register_family(NoEmbeddings())


@pytest.fixture
def untrained_version(tmp_path) -> tuple[RunDir, Registry, str]:
    "A run with out-of-scope rows and a tiny random classifier (no training, no ONNX), registered as a version of a family without logits."
    run = RunDir.create(tmp_path / "run")
    prepare_data(DataConfig(dataset=tiny_dataset(tmp_path), run_dir=str(run.path), out_of_scope="class"))
    manifest = read_manifest(run.data)
    tokenizer = load_tokenizer()
    tiny_model(sorted(manifest["label2id"], key=manifest["label2id"].get), vocab_size=len(tokenizer)).save_pretrained(run.model)
    tokenizer.save_pretrained(run.model)
    atomic_write_json(run.reports / "metrics.json", {
        "data_version": manifest["version"], "test_sha256": manifest["split_sha256"]["test"], "test": {"accuracy": 0.2, "macro_f1": 0.1}})
    registry = Registry(tmp_path / "registry")
    version = registry.register(run.path, NAME, family=PROBABILITIES_ONLY.name)
    run.record_params("registry", {"model_name": NAME, "version": version, "registry_dir": str(registry.root),
                                   "registered_family": PROBABILITIES_ONLY.name})
    return run, registry, version


def test_the_runs_version_without_logits_gets_no_policy_and_nothing_is_written(untrained_version, caplog):
    run, registry, version = untrained_version
    with caplog.at_level("INFO"):
        assert run_abstention(AbstentionConfig(run_dir=str(run.path))) is None
    assert "test-probabilities-only family, which has no logits to score: no abstention policy" in caplog.text
    assert not (run.path / "abstention").exists() and not (run.reports / "abstention.json").exists()
    assert "abstention" not in registry.attachments(NAME, version)


def test_a_named_version_without_logits_is_refused(untrained_version):
    run, registry, version = untrained_version
    with pytest.raises(CapabilityError, match="cannot be given an abstention policy") as caught:
        run_abstention(AbstentionConfig(run_dir=str(run.path), version=version))
    assert "'logits'" in caught.value.what and "test-probabilities-only can do: onnx" in caught.value.fix


def test_a_family_without_embeddings_is_judged_on_the_other_scores(staged):
    mode, run, registry, result = staged
    version = registry.register(run, NAME, family=NO_EMBEDDINGS.name)  # the same model and ONNX files, another family
    again = run_abstention(AbstentionConfig(run_dir=str(run), version=version, target_precision=0.9))
    assert again.report["attachment"] == f"attached to {NAME} {version}"
    scores = set(again.table.score) - {"-"}
    assert "centroid_similarity" not in scores and scores <= {"max_probability", "energy", "max_logit"}
    assert again.policy.centroids is None
