"""Static checks of deploy/Dockerfile and .dockerignore (no Docker engine needed): pinned bases, non-root,
port, health check, the serve command, the lock file, and a build context that holds what COPY needs."""
from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINER_PORT = 8000
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
VARIANTS = ("cpu", "gpu")


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) pairs of `text`, with comments dropped and continuation lines joined."
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # Docker drops comment lines, even inside a continuation
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def substitute(text: str, variables: dict[str, str]) -> str:
    "`text` with `$NAME` and `${NAME}` replaced from `variables`."
    return re.sub(r"\$\{?(\w+)\}?", lambda match: variables.get(match.group(1), match.group(0)), text)


def arg_defaults(arguments: list[str]) -> dict[str, str]:
    "Defaults of ARG instructions, e.g. `VARIANT=cpu` -> {'VARIANT': 'cpu'}."
    defaults = {}
    for argument in arguments:
        name, _, default = argument.partition("=")
        if default: defaults[name] = default.strip('"')
    return defaults


def split_stages(instructions: list[tuple[str, str]], variables: dict[str, str]) -> list[dict]:
    "One dict per FROM: its image (ARGs substituted), its name, and its instructions."
    stages = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--platform")]
            image = substitute(words[0], variables)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, arguments))
    return stages


def env_pairs(arguments: str) -> dict[str, str]:
    "The variables one `ENV KEY=VALUE ...` instruction sets."
    return dict(word.split("=", 1) for word in shlex.split(arguments))


def exec_form(arguments: str) -> list[str]:
    "A JSON exec-form list (`[\"a\", \"b\"]`); shell form fails the test, since it breaks signals."
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(word, str) for word in value), arguments
    return value


def follows(words: list[str], first: str, second: str) -> bool:
    "Whether `second` comes right after `first` somewhere in `words`."
    return any(a == first and b == second for a, b in zip(words, words[1:]))


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def global_args(instructions) -> dict[str, str]:
    "ARG defaults declared before the first FROM (the only ones FROM lines can use)."
    first_from = next(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return arg_defaults([arguments for keyword, arguments in instructions[:first_from] if keyword == "ARG"])


@pytest.fixture(scope="module", params=VARIANTS)
def stages(request, instructions, global_args) -> list[dict]:
    "The stages as built with `--build-arg VARIANT=<cpu|gpu>`."
    return split_stages(instructions, {**global_args, "VARIANT": request.param})


@pytest.fixture(scope="module")
def runtime(stages) -> dict:
    "The final stage: what the image runs."
    return stages[-1]


def test_variant_defaults_to_cpu(global_args):
    assert global_args.get("VARIANT") == "cpu"


def test_base_images_are_pinned_tags_and_stages_exist(stages):
    names = set()
    for stage in stages:
        image = stage["image"]
        if image not in names:  # an outside image, not an earlier stage
            assert "$" not in image, f"unresolved build argument in FROM {image}"
            tag = image.rpartition("/")[2].partition(":")[2]
            assert "@sha256:" in image or (tag and tag != "latest"), f"FROM {image} is not pinned to a tag"
        if stage["name"]: names.add(stage["name"])
    assert stages[-1]["image"] in names, "the runtime stage should start from a base stage of this file"
    assert "builder" in names, "a multi-stage build: the venv is built in a `builder` stage"


def test_python_matches_the_project(global_args, instructions):
    settings = configparser.ConfigParser(delimiters=["="])
    settings.read(ROOT / "settings.ini", encoding="utf-8")
    version = settings["DEFAULT"]["min_python"]
    assert global_args["PYTHON_IMAGE"].startswith(f"python:{version}-")
    gpu_installs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert f"python{version}-venv" in gpu_installs, "the GPU base installs the same Python"


def test_runtime_runs_as_a_non_root_user(runtime):
    users = [arguments for keyword, arguments in runtime["instructions"] if keyword == "USER"]
    assert users, "the runtime stage sets no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"


def test_exposes_the_server_port(runtime):
    exposed = {port.split("/")[0] for keyword, arguments in runtime["instructions"] if keyword == "EXPOSE"
               for port in arguments.split()}
    assert str(CONTAINER_PORT) in exposed


def test_healthcheck_hits_health(runtime):
    checks = [arguments for keyword, arguments in runtime["instructions"] if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and not checks[0].upper().startswith("NONE")
    command = checks[0].split("CMD", 1)[1]
    assert f"127.0.0.1:{CONTAINER_PORT}/health" in command or f"localhost:{CONTAINER_PORT}/health" in command


def test_command_serves_on_all_interfaces(runtime):
    entrypoint = [exec_form(arguments) for keyword, arguments in runtime["instructions"] if keyword == "ENTRYPOINT"]
    cmd = [exec_form(arguments) for keyword, arguments in runtime["instructions"] if keyword == "CMD"]
    assert cmd, "no CMD"
    command = (entrypoint[-1] if entrypoint else []) + cmd[-1]
    assert follows(command, "ainative", "serve"), command
    assert follows(command, "--host", "0.0.0.0"), command
    assert follows(command, "--port", str(CONTAINER_PORT)), command


def test_environment_is_offline_and_known_to_the_server(runtime, server_environment):
    environment = {}
    for keyword, arguments in runtime["instructions"]:
        if keyword == "ENV": environment.update(env_pairs(arguments))
    assert environment.get("HF_HUB_OFFLINE") == "1"
    assert environment.get("AINATIVE_REGISTRY_DIR") == "/registry"
    unknown = {name for name in environment if name.startswith("AINATIVE_")} - server_environment
    assert not unknown, f"the server reads no such variables: {unknown}"


def test_venv_is_built_with_the_lock_and_copied_from_the_builder(stages, runtime):
    builder = next(stage for stage in stages if stage["name"] == "builder")
    installs = [arguments for keyword, arguments in builder["instructions"]
                if keyword == "RUN" and "pip install" in arguments]
    assert installs, "the builder installs nothing"
    for install in installs:
        words = shlex.split(install.split("pip install", 1)[1].split("&&")[0])
        assert follows(words, "-c", "constraints.txt"), f"pip install without the lock: {install}"
        assert "-e" not in words and "--editable" not in words, "the image needs a regular install"
    copied = [arguments.split() for keyword, arguments in builder["instructions"] if keyword == "COPY"]
    assert any("constraints.txt" in words for words in copied)
    copies_from_builder = [arguments for keyword, arguments in runtime["instructions"]
                           if keyword == "COPY" and arguments.startswith("--from=builder")]
    assert copies_from_builder, "the runtime stage should take the venv from the builder"


def expand(word: str, variables: dict[str, str]) -> str:
    "`word` as the shell expands it: `${NAME:+text}` (text when NAME is set and not empty), then `$NAME` / `${NAME}`."
    word = re.sub(r"\$\{(\w+):\+([^}]*)\}", lambda m: m.group(2) if variables.get(m.group(1)) else "", word)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), ""), word)


def install_target(stages: list[dict], extras: str = "") -> str:
    "What the builder's `pip install` installs (e.g. `.[serve]`), built with `--build-arg EXTRAS=<extras>`."
    builder = next(stage for stage in stages if stage["name"] == "builder")
    base = next(stage for stage in stages if stage["name"] == builder["image"])
    variables = {}
    for keyword, arguments in base["instructions"] + builder["instructions"]:
        if keyword == "ENV": variables.update(env_pairs(arguments))
        if keyword == "ARG": variables.setdefault(arguments.partition("=")[0], arguments.partition("=")[2].strip('"'))
    variables["EXTRAS"] = extras
    (install,) = [arguments for keyword, arguments in builder["instructions"] if keyword == "RUN" and "pip install" in arguments]
    words = shlex.split(install.split("pip install", 1)[1].split("&&")[0])
    (target,) = [word for word in words if word.startswith(".")]
    return expand(target, variables)


@pytest.mark.parametrize("variant", VARIANTS)
def test_image_installs_only_the_serving_extra(instructions, global_args, variant):
    "The CPU image installs `ainative[serve]` (CPU ONNX Runtime), the GPU one `ainative[gpu]`: no torch, no pandas."
    stages = split_stages(instructions, {**global_args, "VARIANT": variant})
    server_extra = {"cpu": "serve", "gpu": "gpu"}[variant]
    assert install_target(stages) == f".[{server_extra}]"
    assert install_target(stages, "explain,postgres") == f".[{server_extra},explain,postgres]", "EXTRAS adds to it"
    settings = configparser.ConfigParser(delimiters=["="])
    settings.read(ROOT / "settings.ini", encoding="utf-8")
    serving_set = settings["DEFAULT"]["requirements"] + settings["DEFAULT"]["serve_requirements"]
    assert "onnxruntime" in serving_set and not re.search(r"^\s*(torch|pandas|transformers)\b", serving_set, re.M)


def test_builder_checks_the_server_imports_no_torch(instructions, global_args):
    "The build fails if the installed server would import torch or pandas (the slim image's promise)."
    builder = next(stage for stage in split_stages(instructions, {**global_args, "VARIANT": "cpu"}) if stage["name"] == "builder")
    install = next(arguments for keyword, arguments in builder["instructions"] if keyword == "RUN" and "pip install" in arguments)
    assert "import sys, ainative.api" in install and "'torch'" in install and "'pandas'" in install


def test_builder_copies_the_stage_notebooks(instructions):
    "setup.py copies the pipeline's notebooks from nbs/ into the package, so the build context must hold them."
    sources = [word for keyword, arguments in instructions if keyword == "COPY" and not arguments.startswith("--from")
               for word in arguments.split()[:-1]]
    assert "nbs" in sources or "nbs/" in sources
    assert not ignored("nbs/01_data.ipynb", dockerignore_patterns())


def test_expand_follows_the_shell():
    assert expand(".[${A}${B:+,$B}]", {"A": "serve", "B": ""}) == ".[serve]"
    assert expand(".[${A}${B:+,$B}]", {"A": "gpu", "B": "explain"}) == ".[gpu,explain]"

def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern:
    "A .dockerignore pattern as a regex: `*` and `?` stay within one path segment, `**/` spans any number."
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i): regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i): regex, i = regex + ".*", i + 2
        elif pattern[i] == "*": regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?": regex, i = regex + "[^/]", i + 1
        else: regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex + r"\Z")


def ignored(path: str, patterns: list[str]) -> bool:
    "Whether Docker leaves `path` (relative to the context) out: it or a folder above it matches a pattern."
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in patterns:
        assert not pattern.startswith("!"), "negations are beyond this checker"
        if any(pattern_regex(pattern).match(prefix) for prefix in prefixes): return True
    return False


def test_dockerignore_leaves_out_local_state():
    patterns = dockerignore_patterns()
    for path in ["runs/20261126-x/params.json", "registry/intent-classifier/aliases.json", ".venv/bin/python",
                 "_docs/index.html", ".git/HEAD", ".pytest_cache/v/x", "ainative/__pycache__/core.cpython-311.pyc"]:
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"


def test_everything_copied_from_the_context_is_there(instructions):
    patterns = dockerignore_patterns()
    sources = []
    for keyword, arguments in instructions:
        if keyword in {"COPY", "ADD"} and not arguments.startswith("--from"):
            words = [word for word in arguments.split() if not word.startswith("--")]
            sources += words[:-1]
    assert sources, "nothing is copied from the build context"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: .dockerignore leaves it out"
    assert not ignored("ainative/serving.py", patterns) and not ignored("ainative/assets", patterns)


def test_parser_sees_a_broken_dockerfile(global_args):
    "The checks above notice a root user and a shell-form command: the parsing is not vacuous."
    broken = DOCKERFILE.read_text(encoding="utf-8").replace("USER 10001:10001", "USER root")
    broken = re.sub(r'CMD \["ainative".*', "CMD ainative serve --port 8000", broken)
    broken_runtime = split_stages(parse_dockerfile(broken), global_args)[-1]
    with pytest.raises(AssertionError):
        test_runtime_runs_as_a_non_root_user(broken_runtime)
    with pytest.raises(json.JSONDecodeError):
        test_command_serves_on_all_interfaces(broken_runtime)


def test_dockerignore_matcher():
    assert ignored("a/b/__pycache__/x.pyc", ["**/__pycache__"]) and ignored("x.pyc", ["**/*.pyc"])
    assert ignored("runs/1/params.json", ["runs"]) and not ignored("ainative/runs.py", ["runs"])
    assert not ignored("ainative/x.egg-info", ["*.egg-info"]), "`*` does not cross folders"
