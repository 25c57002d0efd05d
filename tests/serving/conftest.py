"""Fixtures of the HTTP tests: one optimised demo registry per session, and `ainative serve` processes on loopback."""
from __future__ import annotations

from pathlib import Path

import pytest

from ainative.registry import Registry
from live_server import MODEL, ServerProcess


@pytest.fixture(scope="session")
def demo_folder(isolated_environment, tmp_path_factory) -> Path:
    "One quickly trained, optimised version promoted to production (`<folder>/registry`, its run `<folder>/run`), built once (~30 s)."
    from ainative.demo import demo_registry
    folder = tmp_path_factory.mktemp("serving-demo")
    demo_registry(folder)
    return folder


@pytest.fixture(scope="session")
def demo_registry_dir(demo_folder) -> Path:
    "The session's registry. Servers only read it; a module that registers or promotes works on a `copy_demo` of it."
    return demo_folder / "registry"


@pytest.fixture(scope="session")
def production_version(demo_registry_dir) -> str:
    return Registry(demo_registry_dir).aliases(MODEL)["production"]


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    "`start_server(registry_dir, env={...})` starts `ainative serve` and waits until ready; every one is stopped at the module's end."
    servers: list[ServerProcess] = []
    log_dir = tmp_path_factory.mktemp("serve-logs")

    def start(registry_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> ServerProcess:
        server = ServerProcess(registry_dir, log_dir, env, args)
        servers.append(server)
        return server.start().wait_ready()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def default_server(demo_registry_dir, tmp_path_factory):
    "One server with the default settings on the session's registry, admin endpoints off; shared by the read-only modules."
    server = ServerProcess(demo_registry_dir, tmp_path_factory.mktemp("serve-logs"))
    yield server.start().wait_ready()
    server.stop()
