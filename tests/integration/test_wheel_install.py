"""ainative as a pip user gets it: the wheel built from the checkout, installed into fresh virtual environments outside
it. The wheel ships the stage notebooks and assets; its requirements are ranges that declare what the code imports;
`ainative[serve]` serves without torch or pandas; `ainative[all]` runs the smoke pipeline in an empty folder and
serves its model.

The serving environment is a real install (no access to the project's .venv) with the lock as constraints and pip's
cache: about half a minute, and the proof that `ainative[serve]` alone serves. A real install of the full set takes
3 to 5 minutes more on 2 cores (2.6 GB, torch included) before the pipeline's own minutes, so by default the full
environment is a fresh venv that sees the project's .venv site-packages through a .pth file and gets the wheel
without dependencies (never touching the .venv); the test then checks that every requirement `ainative[all]`
declares is met there. AINATIVE_WHEEL_TEST_FRESH=1 installs `ainative[all]` for real instead (what CI on a release
should run)."""
from __future__ import annotations

import ast
import email
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ainative.pipeline import STAGES

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PLATFORMS = {  # marker environments of the machines the extras are meant for
    "linux-x86_64": {"platform_system": "Linux", "platform_machine": "x86_64", "sys_platform": "linux"},
    "linux-aarch64": {"platform_system": "Linux", "platform_machine": "aarch64", "sys_platform": "linux"},
    "macos-arm64": {"platform_system": "Darwin", "platform_machine": "arm64", "sys_platform": "darwin"},
    "windows-amd64": {"platform_system": "Windows", "platform_machine": "AMD64", "sys_platform": "win32"},
}
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}
HEAVY = {"torch", "transformers", "pandas", "datasets", "matplotlib", "captum", "wandb", "papermill"}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    finished = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert finished.returncode == 0, f"{' '.join(command)} failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-5000:]}"
    return finished


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    "The wheel, built from a copy of what the Docker build copies too (package, set-up files, notebooks): no stale build/."
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.py", "settings.ini", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ainative", source / "ainative", ignore=shutil.ignore_patterns("__pycache__", "stages"))
    shutil.copytree(ROOT / "nbs", source / "nbs", ignore=lambda folder, names: [n for n in names if not n.endswith(".ipynb")])
    dist = tmp_path_factory.mktemp("dist")
    run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(dist), str(source)], cwd=dist)
    (built,) = dist.glob("ainative-*.whl")
    return built


@pytest.fixture(scope="module")
def metadata(wheel) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def resolve(metadata, extras: set[str], platform: str) -> set[str]:
    "The names of the direct requirements that `pip install ainative[<extras>]` takes on `platform`."
    names = set()
    for line in metadata.get_all("Requires-Dist"):
        requirement = Requirement(line)
        environment = {**PLATFORMS[platform], "python_version": "3.11", "python_full_version": "3.11.7"}
        if requirement.marker is None or any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras | {""}):
            names.add(canonicalize_name(requirement.name))
    return names


def test_wheel_ships_the_stage_notebooks_and_the_assets(wheel):
    "The pipeline's notebooks (as `STAGES` names them, copied from nbs/ at build time) and every asset are package data."
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for notebook in STAGES.values():
            assert archive.read(f"ainative/stages/{notebook}") == (ROOT / "nbs" / notebook).read_bytes(), notebook
        assets = {str(p.relative_to(ROOT)) for p in (ROOT / "ainative" / "assets").rglob("*") if p.is_file()}
        assert "ainative/assets/support_intents.csv" in assets and assets <= names, assets - names
    assert {n.split("/")[2] for n in names if n.startswith("ainative/stages/")} == set(STAGES.values())


def test_stage_notebooks_are_not_committed_copies():
    "One source of truth: the package's stage notebooks exist only in the wheel, never in the checkout."
    assert not (ROOT / "ainative" / "stages").exists()


def test_requirements_are_ranges_and_the_lock_pins_them(metadata):
    "install_requires and the extras give ranges; exact versions live in constraints.txt, which pins every one of them."
    pinned = {canonicalize_name(line.split("==")[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    for line in metadata.get_all("Requires-Dist"):
        requirement = Requirement(line)
        assert not any(spec.operator in {"==", "==="} for spec in requirement.specifier), f"exact pin: {line}"
        assert canonicalize_name(requirement.name) in pinned, f"{requirement.name} is not in constraints.txt (make lock)"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_one_onnx_runtime_per_install(metadata, platform):
    "Each documented install takes exactly one ONNX Runtime build; `serve` is the CPU one, `gpu` the CUDA one."
    for extras in [{"serve"}, {"gpu"}, {"all"}, {"all", "dev"}, {"serve", "train"}, {"serve", "explain"},
                   {"serve", "postgres"}, {"gpu", "train", "explain", "notebooks"}]:
        runtimes = resolve(metadata, extras, platform) & RUNTIMES
        assert len(runtimes) == 1, f"ainative[{','.join(sorted(extras))}] on {platform} installs {runtimes or 'no runtime'}"
    assert resolve(metadata, {"serve"}, platform) & RUNTIMES == {"onnxruntime"}
    assert resolve(metadata, {"gpu"}, platform) & RUNTIMES == {"onnxruntime-gpu"}
    if platform == "linux-x86_64":  # what `make setup` always installed there: the CUDA build, which runs on CPUs too
        assert resolve(metadata, {"all", "gpu"}, platform) & RUNTIMES == {"onnxruntime-gpu"}


def test_base_and_serve_sets_are_slim(metadata):
    "Neither the base install nor the serving set names torch, pandas or the other pipeline packages."
    for platform in PLATFORMS:
        assert not resolve(metadata, {"serve"}, platform) & HEAVY
        assert not resolve(metadata, {"gpu"}, platform) & HEAVY
    assert HEAVY <= resolve(metadata, {"explain", "track", "notebooks"}, "linux-x86_64"), "HEAVY names real requirements"


def imported_modules(path: Path) -> set[str]:
    "Top-level names of every module `path` imports, at the top or inside functions."
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import): modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0: modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"ainative"}


def test_requirements_declare_what_the_code_imports(metadata):
    "Every package the modules import is a declared requirement (of the base or an extra); `requests`, which none imports, is not."
    from importlib.metadata import packages_distributions
    providers = packages_distributions()
    declared = {canonicalize_name(Requirement(line).name) for line in metadata.get_all("Requires-Dist")}
    imported = set().union(*(imported_modules(path) for path in (ROOT / "ainative").glob("*.py")))
    undeclared = {module for module in imported if not {canonicalize_name(d) for d in providers.get(module, [module])} & declared}
    assert not undeclared, f"imported but not declared in settings.ini: {sorted(undeclared)}"
    base = {canonicalize_name(Requirement(line).name) for line in metadata.get_all("Requires-Dist") if "extra ==" not in line}
    assert "requests" not in base and "requests" not in resolve(metadata, {"all"}, "linux-x86_64"), "nothing imports requests"


def venv_python(folder: Path) -> Path:
    return folder / "bin" / "python"


def fresh_venv(folder: Path, requirement: str) -> Path:
    "A virtual environment at `folder` (no system or project site-packages) with `requirement` installed under the lock."
    run([PYTHON, "-m", "venv", str(folder)], cwd=folder.parent)
    run([str(venv_python(folder)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), requirement], cwd=folder.parent, timeout=1800)
    return folder


def user_environment(**extra: str) -> dict[str, str]:
    "The test session's environment without this checkout's venv or any AINATIVE_ setting but the cache: a new user's shell."
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AINATIVE_", "VIRTUAL_ENV", "PYTHON"))}
    keep["PATH"] = os.pathsep.join(p for p in keep.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT)))
    return {**keep, "AINATIVE_CACHE_DIR": os.environ.get("AINATIVE_CACHE_DIR", ""), "HF_HUB_OFFLINE": "1",
            "WANDB_MODE": "disabled", **extra}


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_and_predict(venv: Path, folder: Path, registry: Path | None = None, model: str | None = None) -> dict:
    "Start `ainative serve` of `venv` in `folder` (`registry`, `model`: default unless given), answer one /predict, stop it."
    port = free_port()
    command = [str(venv / "bin" / "ainative"), "serve", "--port", str(port)]
    command += (["--registry-dir", str(registry)] if registry else []) + (["--model", model] if model else [])
    log = (folder / f"serve-{port}.log").open("wb")
    server = subprocess.Popen(command, cwd=folder, env=user_environment(AINATIVE_DEVICE="cpu"), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"ainative serve exited: {Path(log.name).read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready within 120 s: {Path(log.name).read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", json.dumps({"text": "where is my parcel?"}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return {"status": answer.status, **json.loads(answer.read())}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def outside(module_tmp_path) -> Path:
    "A folder outside the checkout for the environments (~1.3 GB) and the user's empty working folder."
    folder = module_tmp_path
    assert ROOT not in folder.resolve().parents
    return folder


@pytest.fixture(scope="module")
def serve_venv(wheel, outside) -> Path:
    return fresh_venv(outside / "serve-venv", f"ainative[serve] @ {wheel.as_uri()}")


@pytest.mark.timeout(1800)
def test_serve_extra_serves_without_torch_or_pandas(serve_venv, outside):
    "`pip install ainative[serve]` answers /predict from a registry and has no torch, pandas or transformers to import."
    installed = run([str(venv_python(serve_venv)), "-m", "pip", "list", "--format=json"], cwd=outside).stdout
    names = {canonicalize_name(p["name"]) for p in json.loads(installed)}
    assert not names & HEAVY, f"the serving environment holds {names & HEAVY}"
    assert names & RUNTIMES == {"onnxruntime"}
    from ainative.demo import demo_registry  # built with this (full) environment; served by the slim one
    demo = outside / "demo"
    demo_registry(demo)
    folder = outside / "slim-user"
    folder.mkdir()
    answer = serve_and_predict(serve_venv, folder, registry=demo / "registry")
    assert answer["status"] == 200 and answer["intent"] and 0 <= answer["confidence"] <= 1
    probe = "import sys, ainative.api, ainative.cli; print(sorted(m for m in ('torch', 'pandas', 'transformers') if m in sys.modules))"
    assert run([str(venv_python(serve_venv)), "-c", probe], cwd=folder, env=user_environment()).stdout.strip() == "[]"


def venv_over_project_packages(folder: Path, wheel: Path) -> Path:
    "A venv at `folder` that imports the project's installed packages (read-only) and holds only the wheel itself."
    run([PYTHON, "-m", "venv", str(folder)], cwd=folder.parent)
    site = run([str(venv_python(folder)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=folder).stdout.strip()
    project_site = run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=folder).stdout.strip()
    # a plain path line: the project's .pth files (its editable ainative) are not run, so `ainative` is the wheel's
    Path(site, "project-packages.pth").write_text(project_site + "\n")
    run([str(venv_python(folder)), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed", str(wheel)], cwd=folder)
    return folder


UNMET = """
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from packaging.requirements import Requirement
unmet = []
for line in distribution("ainative").requires:
    requirement = Requirement(line)
    if requirement.marker and not requirement.marker.evaluate({"extra": "all"}): continue
    try:
        if not requirement.specifier.contains(version(requirement.name), prereleases=True): unmet.append(line)
    except PackageNotFoundError:
        unmet.append(line)
print("\\n".join(unmet))
"""


@pytest.fixture(scope="module")
def full_venv(wheel, outside) -> Path:
    if os.environ.get("AINATIVE_WHEEL_TEST_FRESH") == "1":
        return fresh_venv(outside / "full-venv", f"ainative[all] @ {wheel.as_uri()}")
    return venv_over_project_packages(outside / "full-venv", wheel)


def test_full_environment_meets_what_all_declares(full_venv, outside):
    "Every requirement of `ainative[all]` (on this platform) is installed at a version in its range; `ainative` is the wheel."
    python = str(venv_python(full_venv))
    assert run([python, "-c", UNMET], cwd=outside).stdout.strip() == ""
    located = run([python, "-c", "import ainative; print(ainative.__file__)"], cwd=outside, env=user_environment()).stdout.strip()
    assert Path(located).is_relative_to(full_venv) and (Path(located).parent / "stages" / "01_data.ipynb").is_file()


@pytest.mark.timeout(2400)
def test_pip_install_runs_the_pipeline_in_an_empty_folder_and_serves_it(full_venv, outside):
    "`pip install ainative[all]`, then in an empty folder `ainative pipeline` (smoke) and `ainative serve` of its model."
    folder = outside / "user"
    folder.mkdir()
    pipeline = subprocess.run([str(full_venv / "bin" / "ainative"), "pipeline"], cwd=folder, env=user_environment(),
                              capture_output=True, text=True, timeout=1800)
    assert pipeline.returncode == 0, f"ainative pipeline failed outside a checkout:\n{pipeline.stderr[-5000:]}"
    (run_dir,) = (folder / "runs").iterdir()
    assert (run_dir / "notebooks" / "01_data.ipynb").is_file() and (run_dir / "onnx").is_dir()
    (aliases_file,) = (folder / "registry").glob("*/aliases.json")  # one registered model, whatever the profile names it
    aliases = json.loads(aliases_file.read_text())
    assert "production" in aliases, aliases
    answer = serve_and_predict(full_venv, folder, model=aliases_file.parent.name)
    assert answer["status"] == 200 and answer["model_version"] == aliases["production"]
