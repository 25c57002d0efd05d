"Teacher logits: the mean of an ensemble, cached in the run with the teachers' fingerprints, recomputed when they change."
from __future__ import annotations

import json

import numpy as np
import pytest

from ainative.core import ConfigError
from ainative.distill import cached_teacher_logits, check_teacher_labels, ensemble_logits, model_fingerprint, resolve_model_folder
from ainative.optimize import batched_logits, load_for_export, torch_predictor

from distill_fixtures import LABEL2ID, save_tiny_bert

TEXTS = ["where is my parcel", "cancel my order please", "i want a refund for the kettle", "refund", "has it shipped yet?"]


@pytest.fixture()
def teachers(tmp_path):
    return [save_tiny_bert(tmp_path / f"teacher-{seed}", seed=seed) for seed in (0, 1)]


def logits_of(folder):
    return batched_logits(torch_predictor(*load_for_export(folder), 32), TEXTS)


def test_ensemble_is_the_mean_of_the_teachers(teachers):
    mean = ensemble_logits(teachers, TEXTS, max_length=32)
    single = [logits_of(folder) for folder in teachers]
    assert mean.dtype == np.float32 and mean.shape == (5, 3)
    assert np.allclose(mean, (single[0] + single[1]) / 2, atol=1e-6) and not np.allclose(single[0], single[1])


def test_cache_is_reused_then_recomputed_when_a_teacher_changes(teachers, tmp_path, monkeypatch):
    import ainative.distill as distill
    calls = []
    real = distill.ensemble_logits
    monkeypatch.setattr(distill, "ensemble_logits", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    cache = tmp_path / "run" / "teacher"
    first, manifest = cached_teacher_logits(cache, teachers, TEXTS, max_length=32)
    assert len(calls) == 1 and (cache / "teacher_logits.npy").is_file()
    stored = json.loads((cache / "manifest.json").read_text())
    assert [t["sha256"] for t in stored["teachers"]] == [model_fingerprint(t) for t in teachers]
    assert stored["examples"] == 5 and stored["max_length"] == 32 and stored["classes"] == 3

    again, _ = cached_teacher_logits(cache, teachers, TEXTS, max_length=32)
    assert len(calls) == 1 and np.array_equal(again, first)  # loaded

    cached_teacher_logits(cache, teachers, TEXTS[::-1], max_length=32)  # other texts (order matters: rows align)
    cached_teacher_logits(cache, teachers, TEXTS[::-1], max_length=16)  # other truncation
    save_tiny_bert(teachers[1], seed=9)                                 # a retrained teacher
    changed, manifest = cached_teacher_logits(cache, teachers, TEXTS[::-1], max_length=16)
    assert len(calls) == 4 and manifest["teachers"][1]["sha256"] == model_fingerprint(teachers[1])


def test_a_manifest_without_its_array_recomputes(teachers, tmp_path):
    cache = tmp_path / "teacher"
    first, _ = cached_teacher_logits(cache, teachers, TEXTS, max_length=32)
    (cache / "teacher_logits.npy").unlink()
    second, _ = cached_teacher_logits(cache, teachers, TEXTS, max_length=32)
    assert np.allclose(first, second) and (cache / "teacher_logits.npy").is_file()


def test_fingerprint_names_the_weights_not_the_path(teachers, tmp_path):
    import shutil
    shutil.copytree(teachers[0], tmp_path / "moved")
    assert model_fingerprint(tmp_path / "moved") == model_fingerprint(teachers[0]) != model_fingerprint(teachers[1])


def test_a_teacher_with_other_labels_is_refused(teachers, tmp_path):
    check_teacher_labels(teachers[0], LABEL2ID)
    swapped = {"refund": 0, "cancel_order": 1, "delivery_status": 2}
    with pytest.raises(ConfigError, match="another label map"):
        check_teacher_labels(teachers[0], swapped)
    with pytest.raises(ConfigError, match="another label map"):
        check_teacher_labels(save_tiny_bert(tmp_path / "two", label2id={"a": 0, "b": 1}), LABEL2ID)


def test_model_folder_resolution(teachers, tmp_path):
    import shutil
    shutil.copytree(teachers[0], tmp_path / "run" / "model")
    assert resolve_model_folder(tmp_path / "run") == tmp_path / "run" / "model"
    assert resolve_model_folder(teachers[0]) == teachers[0]
