"""Shared by the deployment tests: the environment variables the server reads, and a served demo registry."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def server_environment() -> set[str]:
    "Every AINATIVE_* variable `ainative serve` reads: one per ServingConfig and MonitorConfig field, the admin token and salt."
    from ainative.monitor import MonitorConfig
    from ainative.serving import ServingConfig
    fields = {f"AINATIVE_{field.name.upper()}" for config in (ServingConfig, MonitorConfig) for field in dataclasses.fields(config)}
    return fields | {"AINATIVE_ADMIN_TOKEN", "AINATIVE_HASH_SALT"}


@pytest.fixture(scope="session")
def deploy_demo(isolated_environment, tmp_path_factory) -> Path:
    """One demo folder (`registry/`, `run/`) for tests/deploy, built once (~60 s). Apart from the serving tests' own: these
    tests attach a synthetic reference profile to it."""
    from ainative.demo import demo_registry
    folder = tmp_path_factory.getbasetemp() / "deploy-demo"
    if not (folder / "built").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        demo_registry(folder)
        (folder / "built").touch()
    return folder
