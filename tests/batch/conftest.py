"""Fixtures of the batch-scoring tests: a fast stand-in runtime, and one optimised demo registry for the session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batch_fixtures import FakeRuntime


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture(scope="session")
def demo_folder(isolated_environment, tmp_path_factory) -> Path:
    """One quickly trained, optimised version promoted to production (`<folder>/registry`, its run `<folder>/run`), built
    once (~60 s) and removed at the session's end. Tests may register more versions; none moves `production`."""
    from ainative.demo import demo_registry
    folder = tmp_path_factory.mktemp("batch-demo")
    demo_registry(folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # ~400 MB
