"""Shared test set-up: keep every test away from the repository's runs/ and registry/, the home cache, W&B and the hub."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Point runs and caches at temporary folders, disable W&B and the HF hub, for the whole session.

    Session-scoped (not function-scoped) so that module-scoped fixtures, which run before any
    function-scoped fixture, see the same isolated environment.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AINATIVE_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        mp.setenv("AINATIVE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("AINATIVE_REGISTRY_DIR", str(tmp_path_factory.mktemp("registry")))
        mp.setenv("WANDB_MODE", "disabled")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def module_tmp_path(request, tmp_path_factory) -> Path:
    """A temporary folder for one test module, deleted when the module ends unless one of its tests failed.

    For module fixtures that copy a registry (~400 MB each): kept for the whole session, as `tmp_path_factory.mktemp`
    folders are, a dozen of them filled the disk of a CI machine and every later test errored."""
    failed_before = request.session.testsfailed
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    if request.session.testsfailed == failed_before: shutil.rmtree(path, ignore_errors=True)
