"""Fixtures of the monitoring tests: a fresh SQLite request log in a temporary folder."""
from __future__ import annotations

import pytest

from ainative.monitor import RequestStore, default_database_url


@pytest.fixture
def store_url(tmp_path):
    return default_database_url(tmp_path / "registry", "intent-classifier")


@pytest.fixture
def store(store_url):
    opened = RequestStore(store_url)
    yield opened
    opened.close()
