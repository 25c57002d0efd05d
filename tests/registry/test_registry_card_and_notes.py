"Each version carries a verified model card; versions are readable; aliases can be deleted and versions annotated."
from __future__ import annotations

import json
import stat

import pytest

from ainative.core import RegistryError

MODEL = "intent-classifier"


def test_every_version_carries_a_verified_model_card(registry, make_run):
    version = registry.register(make_run(accuracy=0.91, macro_f1=0.9))
    folder = registry.resolve(MODEL, version)
    card = (folder / "README.md").read_text()
    data = json.loads((make_run().joinpath("data", "manifest.json")).read_text())
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification\n")
    assert f"# {MODEL} {version}" in card and f"data version `{data['version']}`" in card
    assert "| this model | 0.9100 | 0.9000 |" in card and "## Limitations" in card and "## Calibration" in card
    assert registry.show(MODEL, version)["files"]["README.md"]["size"] == len(card.encode())
    assert registry.verify(MODEL) == []
    (folder / "README.md").chmod(0o644)
    (folder / "README.md").write_text(card.replace("0.9100", "0.9900"))  # a card edited to look better
    assert registry.verify(MODEL) == [f"{MODEL}/{version}/README.md: modified (sha256 differs from the recorded "
                                      f"{registry.show(MODEL, version)['files']['README.md']['sha256'][:12]}…)"]


def test_version_folders_are_readable_by_others(registry, make_run):
    "A server running as another user reads the registry (never writes it): folders 0755, files 0444."
    folder = registry.resolve(MODEL, registry.register(make_run()))
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o444), (path, oct(mode))


def test_deleting_an_alias_is_recorded_and_rolled_back(registry, make_run):
    version = registry.register(make_run())
    registry.promote(MODEL, version, "staging")
    entry = registry.delete_alias(MODEL, "staging", reason="retired")
    assert entry["action"] == "delete" and entry["from"] == version and entry["to"] is None
    assert "staging" not in registry.aliases(MODEL) and "staging" not in json.loads((registry.model_root(MODEL) / "aliases.json").read_text())
    assert registry.verify(MODEL) == []
    with pytest.raises(RegistryError, match="has no alias 'staging'"):
        registry.delete_alias(MODEL, "staging")
    assert registry.rollback(MODEL, "staging")["to"] == version and registry.aliases(MODEL)["staging"] == version


def test_alias_deleted_in_history_but_not_yet_in_the_file_is_gone(registry, make_run):
    "A process killed between the history line and aliases.json: the history is the truth, as for promotions."
    version = registry.register(make_run())
    registry.promote(MODEL, version, "staging")
    before = (registry.model_root(MODEL) / "aliases.json").read_text()
    registry.delete_alias(MODEL, "staging")
    (registry.model_root(MODEL) / "aliases.json").write_text(before)  # as if killed before the file was replaced
    assert "staging" not in registry.aliases(MODEL)


def test_tags_and_descriptions_live_beside_the_versions(registry, make_run):
    version = registry.register(make_run())
    registry.annotate(MODEL, version, {"owner": "support", "stage": "canary"}, description="first cut")
    assert registry.annotate(MODEL, version, {"stage": None}) == {"tags": {"owner": "support"}, "description": "first cut"}
    assert registry.notes(MODEL) == {version: {"tags": {"owner": "support"}, "description": "first cut"}}
    assert registry.verify(MODEL) == []  # the version's files did not change
    with pytest.raises(RegistryError):
        registry.annotate(MODEL, "v0099", {"owner": "x"})
