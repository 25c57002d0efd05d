"""The registry knows no family's code (issue 27): it asks the version's family for the run's metrics and files, records
the family, the module that defines it and its task, and opens versions registered before families were recorded as
transformer versions. A family defined anywhere (here: in this test module) is registered like the built-in ones,
and the rules that hold for every family (no pickle, the data's label map) hold for it too."""
from __future__ import annotations

import json

import pytest

from ainative.core import ConfigError, RegistryError, RunDir, atomic_write_json, sha256_file
from ainative.families import FAMILIES, Family, StagedModel, read_run_json, register_family
from ainative.registry import Registry
from ainative.transformer import TRANSFORMER

MODEL = "intent-classifier"


class Keywords(Family):
    "A toy family: a JSON table of keywords per label, with the run's training metrics."
    name, library = "keywords", "json"
    labels = {"cancel_order": 0, "delivery_status": 1, "refund": 2}

    def run_metrics(self, run: RunDir): return read_run_json(run.reports / "metrics.json", "reports/metrics.json")

    def stage(self, run: RunDir, staging):
        atomic_write_json(staging / "model" / "keywords.json", {"refund": ["refund"], "cancel_order": ["cancel"]})
        return StagedModel({"label2id": self.labels, "id2label": {str(i): label for label, i in self.labels.items()}})


class Pickled(Keywords):
    name = "pickled"

    def stage(self, run: RunDir, staging):
        staged = super().stage(run, staging)
        (staging / "model" / "table.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle: loading it could run code
        return staged


class OtherLabels(Keywords):
    name, labels = "other-labels", {"a": 0, "b": 1}


@pytest.fixture
def toy_families():
    families = [register_family(Keywords()), register_family(Pickled()), register_family(OtherLabels())]
    yield families
    for family in families: FAMILIES.pop(family.name, None)


def test_a_version_records_its_family_module_and_task(registry, make_run):
    version = registry.register(make_run())
    manifest = registry.show(MODEL, version)
    assert (manifest["family"], manifest["family_module"], manifest["task"]) == ("transformer", "ainative.transformer", "intent")
    assert registry.version_family(MODEL, version) is TRANSFORMER
    model, tokenizer = registry.load_model(MODEL, version)  # the family loads it
    assert model.config.id2label[0] == "cancel_order" and not model.training


def _as_written_before_families(registry: Registry, version: str) -> dict:
    "Rewrite `version`'s manifest as the code before families wrote it: no `family`, `family_module` or `task`."
    folder = registry.resolve(MODEL, version)
    old = {key: value for key, value in registry.show(MODEL, version).items() if key not in ("family", "family_module", "task")}
    for name in ("manifest.json", "manifest.sha256"): (folder / name).chmod(0o644)
    (folder / "manifest.json").write_text(json.dumps(old))
    (folder / "manifest.sha256").write_text(sha256_file(folder / "manifest.json") + "\n")
    return old


def test_a_version_registered_before_families_is_a_transformer_version(registry, make_run):
    version = registry.register(make_run())
    _as_written_before_families(registry, version)
    assert registry.verify(MODEL) == [] and "family" not in registry.show(MODEL, version)
    assert registry.version_family(MODEL, version) is TRANSFORMER
    model, _ = registry.load_model(MODEL, version)
    assert model.config.id2label[2] == "refund"
    registry.promote(MODEL, version)
    newer = registry.register(make_run(accuracy=0.95, macro_f1=0.95))  # a new version beside an old one: the gate compares them
    assert registry.promote(MODEL, newer)["to"] == newer


def test_a_family_defined_anywhere_is_registered_like_the_built_in_ones(registry, make_run, toy_families):
    version = registry.register(make_run(), name="keyword-classifier", family="keywords")
    manifest = registry.show("keyword-classifier", version)
    assert (manifest["family"], manifest["family_module"], manifest["task"]) == ("keywords", __name__, "intent")
    assert manifest["labels"]["label2id"] == Keywords.labels and "model/keywords.json" in manifest["files"]
    assert registry.version_family("keyword-classifier", version) is FAMILIES["keywords"] and registry.verify("keyword-classifier") == []
    card = (registry.resolve("keyword-classifier", version) / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: json\npipeline_tag: text-classification\n")


@pytest.mark.parametrize("family, error, message", [
    ("pickled", RegistryError, "pickle-based file.*table.bin"),
    ("other-labels", RegistryError, "differ from the data's"),
    ("nonesuch", ConfigError, "No model family 'nonesuch'"),
])
def test_what_every_family_must_keep_is_checked_by_the_registry(registry, make_run, toy_families, family, error, message):
    with pytest.raises(error, match=message):
        registry.register(make_run(), family=family)
    assert registry.versions(MODEL) == []
    assert not [p for p in registry.model_root(MODEL).glob(".tmp-*")]  # nothing half-done left behind
