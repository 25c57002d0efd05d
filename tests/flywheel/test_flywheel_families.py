"""A turn asks the champion's family whether its model trains further (`finetune`, chapter 2d), never its name: only
then does the challenger warm-start from the champion's weights; otherwise it trains from the base model, and the
turn says why in its log and its `flywheel` record."""
from __future__ import annotations

from pathlib import Path

from flywheel_fixtures import CHALLENGER_TRAINING, FAST_OPTIMIZATION, SLICE_TEXTS

from ainative.data import read_manifest
from ainative.families import Family, register_family
from ainative.flywheel import FlywheelConfig, retrain, warm_start_from
from ainative.monitor import RequestStore, default_database_url
from ainative.registry import Registry
from ainative.transformer import TransformerFamily

NAME = "intent-classifier"


class Trainable(Family):
    name, capabilities = "test-trainable", frozenset({"logits", "finetune"})


class Fixed(TransformerFamily):
    "A family stored like the transformer (so a run's model registers) whose model does not train further, as the TF-IDF baseline."
    name, capabilities = "test-fixed", frozenset({"onnx"})


TRAINABLE, FIXED = register_family(Trainable()), register_family(Fixed())


def test_only_a_family_that_can_finetune_is_warm_started():
    champion = Path("/registry/intent-classifier/v0003")
    assert warm_start_from(TRAINABLE, champion) == (champion / "model", "warm-started from the champion v0003's weights")
    assert warm_start_from(TRAINABLE, champion, warm_start=False)[0] is None
    folder, why = warm_start_from(FIXED, champion)
    assert folder is None and why.startswith("from the base model: the champion v0003 is of the test-fixed family")
    assert "'finetune'" in why


def test_a_champion_that_cannot_finetune_gives_way_to_the_base_model(champion, caplog):
    registry = Registry(champion["registry"])
    fixed = registry.register(champion["run"], NAME, family=FIXED.name)  # the champion's run, as a version of `Fixed`
    labels = sorted(read_manifest(champion["run"] / "data")["label2id"])
    store = RequestStore(default_database_url(registry.root, NAME))
    try: store.add_feedback([{"text": text, "label": labels[0]} for text in SLICE_TEXTS], labels, at=2000.0)
    finally: store.close()
    with caplog.at_level("INFO"):
        made = retrain(FlywheelConfig(registry_dir=str(registry.root), champion=fixed), training=CHALLENGER_TRAINING,
                       optimization=FAST_OPTIMIZATION)
    assert made.status == "trained" and made.champion == fixed
    params = made.run.read_params()
    base_model = champion["manifest"]["params"]["training"]["base_model"]
    assert params["training"]["base_model"] == base_model  # the line's base model, not the champion's folder
    assert params["flywheel"]["start"].startswith(f"from the base model: the champion {fixed} is of the test-fixed")
    assert params["flywheel"]["start"] in caplog.text
