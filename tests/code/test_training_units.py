"Units of the training stage that need no training run."
import math

import numpy as np
import pytest

from ainative.core import AinativeError, ConfigError, DeviceInfo
from ainative.scoring import classification_metrics
from ainative.training import TrainingConfig, _check_not_diverged, build_optimizer, resolve_precision, trainer_metrics

CPU = DeviceInfo("cpu", "2 threads", 1, False, "test")
GPU = DeviceInfo("cuda", "fake", 1, True, "test")
OLD_GPU = DeviceInfo("cuda", "fake", 1, False, "test")


@pytest.mark.parametrize("asked, device, expected", [
    ("auto", CPU, "fp32"), ("auto", GPU, "bf16"), ("auto", OLD_GPU, "fp16"), ("fp16", GPU, "fp16"), ("fp32", GPU, "fp32")])
def test_precision_follows_the_device(asked, device, expected):
    assert resolve_precision(asked, device) == expected


def test_half_precision_on_cpu_is_refused():
    with pytest.raises(ConfigError):
        resolve_precision("bf16", CPU)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"learning_rate": -1}, {"batch_size": 0}, {"warmup_fraction": 1.0}])
def test_bad_training_parameters_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainingConfig(**bad)


def test_divergence_is_reported():
    with pytest.raises(AinativeError, match="diverged"):
        _check_not_diverged([{"loss": 1.0, "epoch": 0.5}, {"eval_loss": float("nan"), "epoch": 1.0}])
    _check_not_diverged([{"loss": 1.0}, {"eval_loss": 0.5}])  # finite: no error


def test_optimizer_groups_decay_and_head_rate():
    from ainative.demo import tiny_model
    model = tiny_model(3, vocab_size=50, hidden_size=8, layers=1, intermediate_size=16)
    optimizer = build_optimizer(model, 1e-4, weight_decay=0.05, head_lr_multiplier=10)
    by_name = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        names = [by_name[id(p)] for p in group["params"]]
        is_head = all(n.startswith("classifier.") or ".pooler." in n for n in names)
        assert math.isclose(group["lr"], 1e-3 if is_head else 1e-4)
        decays = group["weight_decay"] == 0.05
        assert all((not n.endswith("bias") and "LayerNorm" not in n) == decays for n in names)


def test_macro_f1_counts_every_class_equally():
    labels = np.array([0] * 8 + [1, 2])
    predictions = np.array([0] * 8 + [0, 0])
    metrics = classification_metrics(labels, predictions, ["big", "small1", "small2"])
    assert metrics["accuracy"] == 0.8
    assert math.isclose(metrics["macro_f1"], (2 * 0.8 / 1.8) / 3)  # only the big class scores
    assert metrics["per_class"]["small1"]["recall"] == 0.0


def test_trainer_metrics_agree_with_the_report():
    "The Trainer's per-epoch scores are the report's accuracy and macro-F1 when every class occurs."
    from types import SimpleNamespace
    logits = np.random.default_rng(0).normal(size=(60, 3))
    labels = np.arange(60) % 3
    epoch = trainer_metrics(SimpleNamespace(predictions=logits, label_ids=labels))
    report = classification_metrics(labels, logits.argmax(1), ["a", "b", "c"])
    assert epoch == {"accuracy": report["accuracy"], "macro_f1": pytest.approx(report["macro_f1"], abs=1e-12)}
