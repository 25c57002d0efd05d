"""Shared test set-up: keep every test away from the repository's runs/ and registry/, the home cache, W&B and the hub."""
from __future__ import annotations

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
