"""The abstention policy as the server uses it: module imports, the decision rule, the threshold choice, storage."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ainative.abstention import (AbstentionPolicy, choose_threshold, class_centroids, intent_columns, load_policy,
                                 save_policy)
from ainative.core import ConfigError, IntegrityError, softmax

LABELS = ["refund", "delivery", "oos"]


def test_the_policy_module_imports_nothing_heavy():
    "The server applies the policy from its own module (chapter 2e): the standard library, numpy and fastcore (light; the server uses it anyway)."
    code = ("import sys, ainative.policy; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'pandas', 'matplotlib', 'scipy', 'transformers', 'onnxruntime', 'sklearn'}); print(heavy)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.8, 0.95, 0.99])
def test_threshold_is_the_lowest_that_reaches_the_target(seed, target):
    rng = np.random.default_rng(seed)
    in_scope = rng.random(400) < 0.9
    scores = np.round(rng.normal(in_scope * 1.5, 1.0), 1)  # rounded: many ties
    threshold = choose_threshold(scores, in_scope, target)
    answered = scores >= threshold
    assert in_scope[answered].mean() >= target
    lower = scores[scores < threshold]
    if len(lower):  # answering the next tie group as well would miss the target... unless a larger set reaches it again
        next_answered = scores >= lower.max()
        assert in_scope[next_answered].mean() < target or next_answered.sum() == len(scores)


def test_thresholds_that_no_set_reaches_answer_nothing():
    scores = np.array([0.9, 0.5, 0.1])
    threshold = choose_threshold(scores, np.array([False, True, True]), 0.99)
    assert threshold > 0.9 and not (scores >= threshold).any()


def test_abstains_applies_each_strategy():
    logits = np.array([[5.0, 0.0, 0.0], [1.0, 0.9, 0.0], [0.0, 0.0, 3.0]])
    probabilities = softmax(logits)
    rule = lambda strategy, **kw: AbstentionPolicy(strategy, LABELS, oos_label="oos", **kw).abstains(logits, probabilities, None, LABELS).tolist()
    assert rule("oos_class") == [False, False, True]
    assert rule("oos_class+threshold", score="max_probability", threshold=0.5) == [False, True, True]
    assert rule("threshold", score="max_logit", threshold=2.0) == [False, True, True]   # oos logit not counted
    holdout = AbstentionPolicy("threshold", ["refund", "delivery"], "energy", 1.5)  # log(e + e^0.9) = 1.64, log 2 = 0.69
    assert holdout.abstains(logits[:, :2], softmax(logits[:, :2]), None, ["refund", "delivery"]).tolist() == [False, False, True]


def test_abstains_refuses_other_models_and_bad_inputs():
    policy = AbstentionPolicy("oos_class+threshold", LABELS, "max_probability", 0.5, oos_label="oos")
    logits = np.zeros((2, 3))
    with pytest.raises(ConfigError, match="other labels"):
        policy.abstains(logits, softmax(logits), None, ["refund", "oos", "delivery"])
    with pytest.raises(ConfigError, match="must both be"):
        policy.abstains(logits, softmax(np.zeros((2, 2))), None, LABELS)
    with pytest.raises(ConfigError, match="needs an out-of-scope class"):
        AbstentionPolicy("oos_class", ["refund", "delivery"], oos_label="oos")
    with pytest.raises(ConfigError, match="finite threshold"):
        AbstentionPolicy("threshold", LABELS, "energy", float("nan"))


def test_centroid_policy_needs_embeddings():
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    centroids = class_centroids(embeddings[:2], np.array([0, 1]), intent_columns(LABELS, "oos"))
    policy = AbstentionPolicy("oos_class+threshold", LABELS, "centroid_similarity", 0.9, oos_label="oos", centroids=centroids)
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [3.0, 0.0, 0.0]])
    assert policy.abstains(logits, softmax(logits), embeddings, LABELS).tolist() == [False, False, True]
    policy.check(has_embeddings=True)
    with pytest.raises(ConfigError, match="no sentence_embedding output"):
        policy.check(has_embeddings=False)
    with pytest.raises(ConfigError, match="sentence_embedding"):
        policy.abstains(logits, softmax(logits), None, LABELS)


def test_storage_round_trip_and_damage(tmp_path):
    assert load_policy(tmp_path) is None
    centroids = np.eye(2, 4, dtype=np.float32)
    policy = AbstentionPolicy("threshold", LABELS, "centroid_similarity", 0.4, oos_label="oos", centroids=centroids,
                              fallback_label="handover", temperature=1.3, target_precision=0.99)
    save_policy(policy, tmp_path / "abstention")
    assert sorted(p.name for p in (tmp_path / "abstention").iterdir()) == ["centroids.npy", "policy.json"]
    loaded = load_policy(tmp_path)
    assert loaded.describe() == policy.describe() and loaded.fallback_label == "handover" and loaded.temperature == 1.3
    record = json.loads((tmp_path / "abstention" / "policy.json").read_text())
    record["centroids"]["file"] = "../elsewhere.npy"
    (tmp_path / "abstention" / "policy.json").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="centroids"):
        load_policy(tmp_path)
    record["centroids"]["file"] = "centroids.npy"
    record["strategy"] = "guess"
    (tmp_path / "abstention" / "policy.json").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="unreadable") as caught:
        load_policy(tmp_path)
    assert caught.value.where.endswith("policy.json") and caught.value.fix
    (tmp_path / "abstention" / "policy.json").unlink()
    with pytest.raises(IntegrityError, match="unreadable"):
        load_policy(tmp_path)


def test_check_refuses_another_calibration():
    policy = AbstentionPolicy("threshold", ["refund", "delivery"], "max_probability", 0.6, temperature=1.4)
    policy.check(has_embeddings=False, temperature=1.4)
    policy.check(has_embeddings=False)  # a server that does not say its temperature is not checked
    with pytest.raises(ConfigError, match="evaluated with temperature 1.4, the server calibrates with 1.0"):
        policy.check(has_embeddings=True, temperature=1.0)
