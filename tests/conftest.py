"""Shared test set-up: keep every test away from the repository's runs/ and registry/, the home cache, W&B and the hub."""
from __future__ import annotations

import os
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


# --- a throwaway PostgreSQL -------------------------------------------------------------------------------------------
# Tests marked `postgres` run on a real PostgreSQL: AINATIVE_TEST_DATABASE_URL's server if set, else a cluster this
# session starts itself (initdb + pg_ctl, a Unix socket only, removed at the end). They are skipped, saying why, only
# where no server can be started; under CI (CI=true) a missing server fails them instead.

def postgres_unavailable(reason: str):
    "Skip the test (a developer's machine without PostgreSQL), or fail it under CI, where the server is part of the suite."
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"PostgreSQL is needed under CI (CI=true) and could not be started: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


@pytest.fixture(scope="session")
def postgres_server():
    "The session's PostgreSQL: AINATIVE_TEST_DATABASE_URL's server, else a cluster of its own (about a second to start)."
    from postgres_cluster import ExternalServer, PostgresCluster, PostgresUnavailable
    try:
        server = (ExternalServer(os.environ["AINATIVE_TEST_DATABASE_URL"]) if os.environ.get("AINATIVE_TEST_DATABASE_URL")
                  else PostgresCluster.started())
    except PostgresUnavailable as error:
        postgres_unavailable(str(error))
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    "A fresh, empty database on the session's PostgreSQL, dropped after the test: its SQLAlchemy URL."
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


def pytest_collection_modifyitems(items):
    "Every test that uses the PostgreSQL fixtures carries the `postgres` marker (so `-m postgres` selects them all)."
    for item in items:
        if {"postgres_server", "postgres_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
