"""Shared by the deployment tests: the environment variables the server reads."""
from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def server_environment() -> set[str]:
    "Every AINATIVE_* variable `ainative serve` reads: one per ServingConfig and MonitorConfig field, the admin token and salt."
    from ainative.monitor import MonitorConfig
    from ainative.serving import ServingConfig
    fields = {f"AINATIVE_{field.name.upper()}" for config in (ServingConfig, MonitorConfig) for field in dataclasses.fields(config)}
    return fields | {"AINATIVE_ADMIN_TOKEN", "AINATIVE_HASH_SALT"}
