"""The abstention stage on a tiny real pipeline (data with out-of-scope rows -> training -> registry -> ONNX):
the policy travels with the version, the server-side functions reproduce the stage's figures, and a run without
out-of-scope rows gets no policy at all."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ainative.abstention import AbstentionConfig, ScoredSplit, evaluate_policy, load_policy, run_abstention, score_texts
from ainative.core import softmax
from ainative.data import DataConfig, load_splits, prepare_data
from ainative.optimize import OnnxRunner, OptimizationConfig, optimize_model
from ainative.registry import Registry, RegistryConfig, register_model
from ainative.training import TrainingConfig, train_model

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
