"""Fixtures of the baseline-family tests: a tiny templated dataset on which the TF-IDF baseline wins, runs, registries."""
from __future__ import annotations

import pytest
from baseline_fixtures import save_untrained_transformer, write_templated_dataset

from ainative.baseline import export_baseline
from ainative.core import RunDir
from ainative.data import DataConfig, prepare_data
from ainative.registry import Registry


@pytest.fixture(scope="session")
def templated_run(tmp_path_factory) -> RunDir:
    "A run on the templated dataset with an untrained transformer in model/ and the exported baseline in baseline/."
    folder = tmp_path_factory.mktemp("templated")
    dataset = write_templated_dataset(folder / "templated.csv")
    run = prepare_data(DataConfig(dataset=str(dataset), run_dir=str(folder / "run"))).run
    save_untrained_transformer(run)
    export_baseline(run.path)
    return run


@pytest.fixture(scope="session")
def smoke_export(tmp_path_factory):
    "The baseline exported for a run on the bundled smoke dataset."
    run = prepare_data(DataConfig(run_dir=str(tmp_path_factory.mktemp("smoke") / "run"))).run
    return export_baseline(run.path)


@pytest.fixture
def baseline_version(templated_run, tmp_path) -> tuple[Registry, str]:
    "A fresh registry holding the templated run's baseline as its first version."
    registry = Registry(tmp_path / "registry")
    return registry, registry.register(templated_run.path, family="baseline")
