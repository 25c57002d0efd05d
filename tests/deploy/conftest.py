"""Shared by the deployment tests: the environment variables the server reads."""
from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def server_environment() -> set[str]:
    "Every AINATIVE_* variable `ainative serve` reads: one per ServingConfig field, plus the admin token."
    from ainative.serving import ServingConfig
    fields = {f"AINATIVE_{field.name.upper()}" for field in dataclasses.fields(ServingConfig)}
    return fields | {"AINATIVE_ADMIN_TOKEN"}
