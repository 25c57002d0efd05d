"""Fixtures of the web page tests: the serving tests' demo registry and live servers (reused, not copied), a server
with a reference profile for the Watch page, and headless Chromium driven by Playwright."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

SERVING_TESTS = Path(__file__).resolve().parents[1] / "serving"
sys.path.insert(0, str(SERVING_TESTS))
from live_server import MODEL, copy_demo  # noqa: E402  (tests/serving's helpers)

_spec = importlib.util.spec_from_file_location("serving_test_fixtures", SERVING_TESTS / "conftest.py")
_serving_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_serving_fixtures)
demo_folder = _serving_fixtures.demo_folder      # one trained, optimised demo version (built once per session)
start_server = _serving_fixtures.start_server    # `ainative serve` on loopback, stopped at the module's end

@pytest.fixture(scope="module")
def ui_folder(demo_folder, module_tmp_path) -> Path:
    "A writable copy of the demo (the server writes its request log there) with a reference profile for drift."
    from ainative.monitor import attach_reference, reference_profile
    from ainative.registry import Registry
    folder = copy_demo(demo_folder, module_tmp_path / "demo")
    registry = Registry(folder / "registry")
    version = registry.aliases(MODEL)["production"]
    id2label = registry.show(MODEL, version)["labels"]["id2label"]
    labels = [id2label[key] for key in sorted(id2label, key=int)]
    rng = np.random.default_rng(0)
    attach_reference(registry, MODEL, version, reference_profile(labels, rng.dirichlet(np.ones(len(labels)), 200),
                                                                 rng.integers(10, 80, 200)))
    return folder


@pytest.fixture(scope="module")
def ui_server(start_server, ui_folder):
    "A server on the copy, without an admin token (start_server drops it): drift judged from the first answer."
    return start_server(ui_folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "0.1", "AINATIVE_MIN_REQUESTS": "1"})


@pytest.fixture(scope="module")
def browser():
    "Headless Chromium (the system's: no browser download) under Playwright; test_ui_browser.py checks both are there."
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=60_000)  # the first /explain loads the torch model: seconds on a shared 2-core machine
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"))
        yield launched
        launched.close()


class PageWatch:
    "What a page did besides rendering: its requests, console errors, uncaught errors and dialogs."
    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda request: self.requests.append((request.method, request.url)))
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))


@pytest.fixture
def page(browser, ui_server):
    "A fresh browser page on the UI server; `page.watch` records what it did."
    context = browser.new_context(viewport={"width": 1000, "height": 900}, base_url=ui_server.url)
    opened = context.new_page()
    opened.set_default_timeout(60_000)  # /explain takes seconds on a shared 2-core machine
    opened.watch = PageWatch(opened, ui_server.url)
    yield opened
    context.close()
