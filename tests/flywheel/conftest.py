"""Fixtures of the flywheel tests: a champion trained for real (a tiny BERT on a keyword dataset, through the data and
training stages, in seconds) and registered as production."""
from __future__ import annotations

import shutil

import pytest

from flywheel_fixtures import TINY_TRAINING, tiny_base_model, write_keyword_dataset


@pytest.fixture(scope="session")
def trained_champion(isolated_environment, tmp_path_factory) -> dict:
    """A registry whose production version A was trained (tiny BERT, keyword dataset, the data stage's default split) and
    registered; built once and copied by `champion` for each test that changes it."""
    from ainative.data import DataConfig, prepare_data
    from ainative.registry import RegistryConfig, register_model
    from ainative.training import TrainingConfig, train_model
    folder = tmp_path_factory.mktemp("flywheel-champion")
    base = tiny_base_model(folder / "base")
    run = folder / "run-a"
    prepare_data(DataConfig(dataset=str(write_keyword_dataset(folder / "keywords.csv")), run_dir=str(run)))
    train_model(TrainingConfig(run_dir=str(run), base_model=str(base), **TINY_TRAINING))
    registered = register_model(RegistryConfig(run_dir=str(run), registry_dir=str(folder / "registry"), promote_to="production"))
    return {"folder": folder, "version": registered.version}


@pytest.fixture
def champion(trained_champion, tmp_path) -> dict:
    "A private copy of the trained champion's registry; its manifest still names the shared run (read, never written)."
    import json
    source = trained_champion["folder"]
    shutil.copytree(source / "registry", tmp_path / "registry", symlinks=True)
    manifest = tmp_path / "registry" / "intent-classifier" / trained_champion["version"] / "manifest.json"
    return {"registry": tmp_path / "registry", "run": source / "run-a", "version": trained_champion["version"],
            "manifest": json.loads(manifest.read_text())}
