"""Fixtures of the monitoring tests: a fresh request log, on SQLite (a file in a temporary folder) and on PostgreSQL (a
fresh database on the session's server, see tests/conftest.py): every test that takes `store` runs on both."""
from __future__ import annotations

import pytest

from ainative.monitor import RequestStore, default_database_url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    "The default request log's URL: an SQLite file in a temporary registry (for what only SQLite has: WAL, file locks, corrupt files)."
    return default_database_url(tmp_path / "registry", "intent-classifier")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, sqlite_url) -> str:
    "An empty request log's URL, once on each backend the README promises."
    return sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    opened = RequestStore(store_url)
    yield opened
    opened.close()
