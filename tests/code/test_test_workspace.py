"""Notebook test runs (`make test` → nbdev_test) must never touch the user's runs/, registry/ or download cache.

nbdev's test runner sets IN_TEST=1 in the process that executes the notebooks; `ainative.core` then points
$AINATIVE_RUNS_DIR, $AINATIVE_REGISTRY_DIR and $AINATIVE_CACHE_DIR at one temporary workspace, unless they are set.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ainative.demo import make_demo_run
from ainative.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKSPACE_VARS = ("AINATIVE_RUNS_DIR", "AINATIVE_REGISTRY_DIR", "AINATIVE_CACHE_DIR")


def tree_digest(folder: Path) -> dict[str, str]:
    "sha256 of every file under `folder`, by relative path (folders and symlinks included by name)."
    digest = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink(): digest[relative] = "link->" + os.readlink(path)
        elif path.is_file(): digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else: digest[relative] = "dir"
    return digest


def user_environment(home: Path, **extra: str) -> dict[str, str]:
    "The environment of a user's shell: none of the workspace variables the test session sets, a home of its own."
    env = {k: v for k, v in os.environ.items() if k not in WORKSPACE_VARS and k != "IN_TEST"}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", WANDB_MODE="disabled", **extra)
    return env


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    "A project checkout as a user has it after `make run`: a trained run in runs/, a version in registry/."
    project = tmp_path_factory.mktemp("user-project")
    shutil.copy(ROOT / "settings.ini", project)
    (project / "nbs").mkdir()
    for name in ("04_registry.ipynb", "_quarto.yml"):
        (project / "nbs" / name).symlink_to(ROOT / "nbs" / name)
    run = make_demo_run(project / "runs" / "20250101-000000-abcdef")
    registry = Registry(project / "registry")
    registry.register(run.path, "intent-classifier")
    registry.promote("intent-classifier", "v0001", "production")
    (project / "home" / ".cache" / "ainative" / "datasets").mkdir(parents=True)
    (project / "home" / ".cache" / "ainative" / "datasets" / "keep.txt").write_text("a cached download\n")
    return project


def test_nbdev_test_leaves_the_users_registry_and_runs_untouched(user_project, tmp_path):
    "Running the registry chapter's tests in a user's checkout changes no byte of runs/, registry/ or the cache."
    watched = [user_project / "runs", user_project / "registry", user_project / "home" / ".cache" / "ainative"]
    before = {str(folder): tree_digest(folder) for folder in watched}
    scratch = tmp_path / "tmp"  # the test workspace goes here, and must be gone when the run ends
    scratch.mkdir()
    result = subprocess.run([str(BIN / "nbdev_test"), "--path", "nbs/04_registry.ipynb"], cwd=user_project,
                            env=user_environment(user_project / "home", TMPDIR=str(scratch)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = {str(folder): tree_digest(folder) for folder in watched}
    changed = {folder: sorted({*before[folder].items()} ^ {*after[folder].items()})[:6] for folder in before
               if before[folder] != after[folder]}
    assert not changed, f"the test run changed the user's files: {changed}"
    assert [p.name for p in scratch.iterdir() if p.name.startswith("ainative-test-workspace-")] == []


def test_import_under_nbdev_test_isolates_workspace(tmp_path):
    "With IN_TEST set and no workspace variables, importing core points all three at one temporary folder."
    code = ("import os, ainative.core as core\n"
            "paths = [os.environ[name] for name in " + repr(WORKSPACE_VARS) + "]\n"
            "print('\\n'.join(paths))\n"
            "print(core.runs_root())\n"
            "assert all(os.path.isdir(path) for path in paths)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=user_environment(tmp_path, IN_TEST="1"),
                            capture_output=True, text=True, check=True)
    runs, registry, cache, runs_root = result.stdout.split("\n")[:4]
    assert len({Path(runs).parent, Path(registry).parent, Path(cache).parent}) == 1  # one workspace
    assert Path(runs).parent != ROOT and not Path(runs).is_relative_to(ROOT)
    assert runs_root == runs
    assert not Path(runs).parent.exists()  # removed when the process ended


def test_explicit_workspace_variables_win(tmp_path):
    "Variables the user (or a test) set are kept; without IN_TEST nothing is changed."
    code = "import os, ainative.core\nprint(os.environ.get('AINATIVE_RUNS_DIR'), os.environ.get('AINATIVE_REGISTRY_DIR'))"
    mine = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=user_environment(tmp_path, IN_TEST="1", AINATIVE_RUNS_DIR=str(tmp_path / "mine")))
    assert mine.stdout.split()[0] == str(tmp_path / "mine") and mine.stdout.split()[1] != "None"
    plain = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=user_environment(tmp_path),
                           capture_output=True, text=True, check=True)
    assert plain.stdout.split() == ["None", "None"]
