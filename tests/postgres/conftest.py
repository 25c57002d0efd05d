"""Fixtures of the PostgreSQL tests: `ainative serve` replicas (tests/serving's `ServerProcess`) on a demo registry,
all sharing one PostgreSQL database (the session's server, tests/conftest.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))  # live_server: `ainative serve` as a process
from live_server import ServerProcess  # noqa: E402


@pytest.fixture(scope="session")
def replica_registry(isolated_environment, tmp_path_factory) -> Path:
    "One quickly trained, optimised version promoted to production, built once (~30 s) as tests/serving's demo registry is."
    from ainative.demo import demo_registry
    return demo_registry(tmp_path_factory.mktemp("postgres-demo"))


@pytest.fixture
def replicas(replica_registry, tmp_path):
    """`replicas(url, n, env)`: n `ainative serve` processes logging to the database `url`, started together (none waits
    for another to be ready), then each waited on until ready; every one is stopped at the test's end."""
    started: list[ServerProcess] = []

    def start(url: str, n: int = 1, env: dict[str, str] | None = None) -> list[ServerProcess]:
        settings = {"AINATIVE_DATABASE_URL": url, "AINATIVE_LOG_FLUSH_S": "0.1", "AINATIVE_DRIFT_INTERVAL_S": "0", **(env or {})}
        servers = [ServerProcess(replica_registry, tmp_path, settings) for _ in range(n)]
        started.extend(servers)
        for server in servers: server.start()
        return [server.wait_ready() for server in servers]

    yield start
    for server in started: server.stop()
