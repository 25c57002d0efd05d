"""Teaching beyond the train texts: perturbed copies the teachers label, and the TF-IDF baseline mixed into the teachers.
The copies reach the trainer and the cache, the mix is the one the trainer learns from, and bad values are refused."""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.special import softmax

import ainative.distill as distill
from ainative.core import ConfigError, RunDir
from ainative.data import load_splits
from ainative.distill import (DistillationConfig, DistillationTrainer, baseline_probabilities, distill_model, ensemble_logits,
                              resolve_model_folder, with_perturbed_copies)

QUICK = {"epochs": 1, "batch_size": 8, "max_length": 16, "learning_rate": 1e-2, "logging_steps": 1000, "early_stopping_patience": 10}


@pytest.fixture(scope="module")
def taught(teacher_run, tmp_path_factory):
    "A student taught on one perturbed copy of each train text by the tiny teacher and the baseline (weight 0.5); the logits it learnt from."
    seen = {}
    original_init = DistillationTrainer.__init__

    def recording(self, *args, teacher_logits, **kwargs):
        seen["teacher_logits"] = np.asarray(teacher_logits)
        original_init(self, *args, teacher_logits=teacher_logits, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DistillationTrainer, "__init__", recording)
        run_dir = tmp_path_factory.mktemp("taught") / "run"
        result = distill_model(DistillationConfig(run_dir=str(run_dir), teachers=(str(teacher_run),), augment_copies=1,
                                                  word_dropout=0.3, baseline_teacher_weight=0.5, **QUICK))
    return result, seen["teacher_logits"]


def test_the_student_learns_from_the_train_texts_and_their_copies(taught, teacher_run):
    result, learnt = taught
    train = load_splits(RunDir(teacher_run).data)["train"]
    rows = with_perturbed_copies(train, copies=1, word_dropout=0.3, seed=DistillationConfig.seed)
    assert len(learnt) == len(rows) == 2 * len(train) and (rows.text[len(train):].values != train.text.values).any()
    cached = np.load(result.run.path / "teacher" / "teacher_logits.npy")
    assert np.allclose(cached, ensemble_logits([resolve_model_folder(teacher_run)], rows.text.tolist(), 16), atol=1e-5)
    label2id = {label: i for i, label in enumerate(sorted(set(train.label)))}
    baseline = baseline_probabilities(train.text.tolist(), [label2id[label] for label in train.label], rows.text.tolist(), 3)
    assert np.allclose(softmax(learnt, axis=-1), 0.5 * softmax(cached, axis=-1) + 0.5 * baseline, atol=1e-5)


def test_the_run_records_how_the_student_was_taught(taught):
    result, _ = taught
    recorded = result.metrics["distillation"]
    assert recorded["augment_copies"] == 1 and recorded["baseline_teacher_weight"] == 0.5
    assert 0 <= recorded["teacher_copies_accuracy"] <= 1 and 0 <= recorded["teacher_train_accuracy"] <= 1
    assert DistillationConfig.from_params(result.run.read_params()["distillation"]).augment_copies == 1


def test_other_copies_are_taught_afresh_and_the_same_copies_come_from_the_cache(taught, teacher_run, monkeypatch):
    result, _ = taught
    calls = []
    monkeypatch.setattr(distill, "ensemble_logits", lambda *a, **k: calls.append(1) or ensemble_logits(*a, **k))
    same = {"run_dir": str(result.run.path), "teachers": (str(teacher_run),), "augment_copies": 1, "word_dropout": 0.3, **QUICK}
    distill_model(DistillationConfig(**same, temperature=4.0))
    assert calls == []  # the same seed gives the same copies: their logits are in the cache
    distill_model(DistillationConfig(**{**same, "seed": 7}))
    assert calls == [1]  # another seed, other copies


@pytest.mark.parametrize("bad, message", [({"augment_copies": -1}, "augment_copies=-1 must be 0 or more"),
                                          ({"word_dropout": 1.0}, "word_dropout=1.0 must be in [0, 1)"),
                                          ({"baseline_teacher_weight": 1.0}, "baseline_teacher_weight=1.0 must be in [0, 1)")])
def test_bad_values_are_refused_with_a_fix(bad, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        DistillationConfig(**bad)
    assert error.value.fix


def test_the_recipe_comes_through_the_command_line_parameters(tmp_path):
    from ainative.cli import build_parser, distill_params
    args = build_parser().parse_args(["distill", str(tmp_path), "--profile", "full", "-p", "augment_copies=1",
                                      "-p", "baseline_teacher_weight=0.35", "-p", "word_dropout=0.2"])
    config = DistillationConfig.from_params(distill_params(args))
    assert (config.augment_copies, config.baseline_teacher_weight, config.word_dropout) == (1, 0.35, 0.2)
