"""Crash and concurrency safety: real processes register at once, or die mid-registration."""
from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from ainative.core import RegistryError
from ainative.registry import _host_tag

MODEL = "intent-classifier"

REGISTER_WHEN_TOLD = """
import sys, time
from pathlib import Path
from ainative.registry import Registry
root, run, ready, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
registry = Registry(root)
ready.touch()
while not go.exists(): time.sleep(0.002)
print(registry.register(run, "intent-classifier"))
"""

REGISTER = """
import sys
from ainative.registry import Registry
print(Registry(sys.argv[1]).register(sys.argv[2], "intent-classifier"))
"""

PROMOTE_MANY = """
import sys
from ainative.registry import Registry
registry = Registry(sys.argv[1])
for i in range(int(sys.argv[2])):
    registry.promote("intent-classifier", ["v0001", "v0002"][i % 2], alias="staging")
"""


def test_processes_registering_at_once_get_distinct_versions(registry, registry_root, make_run, start_python, tmp_path):
    run = make_run()
    go = tmp_path / "go"
    processes = [start_python(REGISTER_WHEN_TOLD, registry_root, run, tmp_path / f"ready-{i}", go) for i in range(3)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(3)):  # all imported: they start together
        assert time.monotonic() < deadline, "the registering processes did not start"
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.01)
    go.touch()
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in results]
    versions = sorted(out.strip() for out, _ in results)
    assert versions == ["v0001", "v0002", "v0003"]
    assert registry.versions(MODEL) == versions
    assert registry.verify(MODEL) == []
    assert not list(registry.model_root(MODEL).glob(".tmp-*"))


@pytest.fixture
def big_run(make_run):
    "A run whose onnx/ holds 96 MB, so that copying, hashing and syncing it takes a while."
    run = make_run()
    (run / "onnx").mkdir()
    with open(run / "onnx" / "model.onnx", "wb") as f:
        for _ in range(12):
            f.write(os.urandom(8 << 20))
    return run


@pytest.mark.parametrize("kill_when", ["temp folder appears", "big file is being copied"])
def test_killed_registration_leaves_no_half_version(kill_when, registry, registry_root, make_run, big_run, start_python):
    small_run = make_run()
    assert registry.register(small_run) == "v0001"
    before = registry.list_versions(MODEL)
    family = registry.model_root(MODEL)
    process = start_python(REGISTER, registry_root, big_run)
    deadline = time.monotonic() + 60
    while True:
        temp_folders = list(family.glob(".tmp-*"))
        if kill_when == "temp folder appears" and temp_folders:
            break
        if kill_when == "big file is being copied" and any((t / "onnx" / "model.onnx").exists() for t in temp_folders):
            break
        if process.poll() is not None:
            pytest.fail(f"the registration ended (rc {process.returncode}) before it could be killed: {process.communicate()}")
        assert time.monotonic() < deadline, "no temp folder appeared"
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert registry.list_versions(MODEL) == before
    assert registry.versions(MODEL) == ["v0001"]
    assert registry.verify(MODEL) == []
    leftovers = sorted(family.glob(".tmp-*"))
    assert leftovers, "the killed process left no temp folder: it was not killed mid-registration"
    assert registry.gc(MODEL) == leftovers
    assert not list(family.glob(".tmp-*"))
    assert registry.register(big_run) == "v0002"  # the next registration works and takes a fresh number
    assert registry.verify(MODEL) == []
    assert registry.show(MODEL, "v0002")["files"]["onnx/model.onnx"]["size"] == 96 << 20


def test_version_numbers_are_never_reused(registry, make_run):
    run = make_run()
    assert [registry.register(run), registry.register(run)] == ["v0001", "v0002"]
    shutil.rmtree(registry.resolve(MODEL, "v0002"))  # someone deletes the newest version by hand
    assert registry.versions(MODEL) == ["v0001"]
    assert registry.register(run) == "v0003"


def test_a_failed_registration_leaves_nothing_behind(registry, make_run):
    run = make_run()
    (run / "reports" / "metrics.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        registry.register(run)
    assert registry.versions(MODEL) == []
    assert not list(registry.root.glob("*/.tmp-*"))


def test_gc_keeps_the_temp_folder_of_a_live_registration(registry, make_run):
    registry.register(make_run())
    live = registry.model_root(MODEL) / f".tmp-{_host_tag()}.{os.getpid()}.0123abcd"  # this process is alive
    live.mkdir()
    assert registry.gc(MODEL) == []
    assert live.exists() and registry.versions(MODEL) == ["v0001"]
    assert registry.gc(MODEL, older_than=-1) == [live]  # too old: removed whoever made it
    assert not live.exists()


def test_concurrent_alias_changes_keep_aliases_and_history_consistent(registry, registry_root, make_run, start_python):
    run = make_run()
    registry.register(run)
    registry.register(run)
    processes = [start_python(PROMOTE_MANY, registry_root, 15) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in results]
    aliases = json.loads((registry.model_root(MODEL) / "aliases.json").read_text())
    assert set(aliases) == {"staging"} and aliases["staging"] in {"v0001", "v0002"}
    history = registry.history(MODEL)
    assert history[0]["from"] is None and len(history) >= 2
    for previous, entry in zip(history, history[1:]):  # every change starts where the one before it ended
        assert entry["from"] == previous["to"] != entry["to"]
    assert history[-1]["to"] == aliases["staging"]


PROMOTE_PAUSED = """
import sys, time
from pathlib import Path
import ainative.registry as registry_module
root, ready = sys.argv[1], Path(sys.argv[2])
real_write = registry_module.atomic_write_json
def write(path, obj):
    if Path(path).name == "aliases.json":  # the history line is written: stop before aliases.json is replaced
        ready.touch()
        time.sleep(600)  # killed here
    return real_write(path, obj)
registry_module.atomic_write_json = write
registry_module.Registry(root).promote("intent-classifier", "v0002", alias="staging", reason="killed midway")
"""


def assert_aliases_agree_with_history(registry) -> None:
    "Every alias is where its latest history entry moved it, as the registry reads it."
    history = registry.history(MODEL)
    from_history = {}
    for entry in history: from_history[entry["alias"]] = entry["to"]
    assert registry.aliases(MODEL) == from_history


@pytest.mark.parametrize("repair", ["gc", "the next alias change"])
def test_a_promotion_killed_between_history_and_aliases_json(repair, registry, registry_root, make_run, start_python,
                                                              kill_when_ready, tmp_path):
    run = make_run()
    registry.register(run)
    registry.register(run)
    registry.promote(MODEL, "v0001", alias="staging")
    ready = tmp_path / "ready"
    kill_when_ready(start_python(PROMOTE_PAUSED, registry_root, ready), ready)

    aliases_path = registry.model_root(MODEL) / "aliases.json"
    assert json.loads(aliases_path.read_text()) == {"staging": "v0001"}  # whole, valid JSON: the old state
    assert registry.history(MODEL)[-1]["to"] == "v0002"  # the change was recorded, so it happened:
    assert registry.aliases(MODEL) == {"staging": "v0002"}  # every reader sees it
    assert_aliases_agree_with_history(registry)
    assert registry.verify(MODEL) == [f"{MODEL}/aliases.json: staging is v0001 in the file, but alias_history.jsonl's latest "
                                      "change moved it to v0002 (a change was interrupted, or the file was edited by hand); "
                                      "the next alias change or registry.gc() rewrites the file"]
    if repair == "gc":
        registry.gc(MODEL)
    else:
        registry.promote(MODEL, "v0001", alias="canary")
    assert json.loads(aliases_path.read_text()) == registry.aliases(MODEL)
    assert registry.verify(MODEL) == []
    assert_aliases_agree_with_history(registry)
    registry.rollback(MODEL, alias="staging")  # the history and the aliases agree, so rollback works
    assert registry.aliases(MODEL)["staging"] == "v0001"
    assert_aliases_agree_with_history(registry)


def test_promotions_killed_at_random_moments_leave_aliases_and_history_agreeing(registry, registry_root, make_run,
                                                                                start_python):
    run = make_run()
    registry.register(run)
    registry.register(run)
    history_path = registry.model_root(MODEL) / "alias_history.jsonl"
    aliases_path = registry.model_root(MODEL) / "aliases.json"
    for attempt, lines in enumerate([3, 10, 25]):
        process = start_python(PROMOTE_MANY, registry_root, 100000)
        deadline = time.monotonic() + 60
        while not history_path.exists() or history_path.read_bytes().count(b"\n") < lines * (attempt + 1):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the promotions did not start"
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        json.loads(aliases_path.read_text())  # always whole
        assert_aliases_agree_with_history(registry)
        registry.gc(MODEL)
        assert json.loads(aliases_path.read_text()) == registry.aliases(MODEL)
        assert registry.verify(MODEL) == []


def test_a_history_line_torn_by_a_crash_changes_nothing(registry, make_run):
    registry.register(make_run())
    registry.promote(MODEL, "v0001", alias="staging")
    history_path = registry.model_root(MODEL) / "alias_history.jsonl"
    with open(history_path, "ab") as f:
        f.write(b'{"alias": "staging", "from": "v0001", "to": "v00')  # killed mid-append
    assert registry.aliases(MODEL) == {"staging": "v0001"}
    assert registry.verify(MODEL) == []
    registry.promote(MODEL, "v0001", alias="canary")
    assert [entry["alias"] for entry in registry.history(MODEL)] == ["staging", "canary"]
    assert_aliases_agree_with_history(registry)
