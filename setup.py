"Package set-up that reads its metadata and requirements from settings.ini (nbdev 2 convention)."
import ast
import re
import shutil
from configparser import ConfigParser
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
config = ConfigParser(delimiters=["="])
config.read(ROOT / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]
LIB = cfg["lib_name"]


def requirement_lines(key: str) -> list[str]:
    "One requirement per non-empty line of `key`, so environment markers may contain spaces."
    return [line.strip() for line in cfg.get(key, "").splitlines() if line.strip()]


def extra_requirements(name: str) -> list[str]:
    "The lines of `<name>_requirements`, with each `ainative[other]` line replaced by that extra's lines."
    lines = []
    for line in requirement_lines(f"{name}_requirements"):
        if line.startswith(f"{LIB}[") and line.endswith("]"):
            lines += extra_requirements(line[len(LIB) + 1:-1])
        else:
            lines.append(line)
    return list(dict.fromkeys(lines))


def is_onnxruntime(line: str) -> bool:
    "Whether requirement `line` names an ONNX Runtime build (`onnxruntime`, `onnxruntime-gpu`)."
    return re.match(r"[A-Za-z0-9._-]+", line).group().lower() in {"onnxruntime", "onnxruntime-gpu"}


def extras() -> dict[str, list[str]]:
    "Every extra; `gpu` is `serve` with ONNX Runtime's CUDA build, `all` every extra but `gpu` with a build chosen by platform."
    names = [key[:-len("_requirements")] for key in cfg if key.endswith("_requirements") and key != "dev_requirements"]
    result = {name: extra_requirements(name) for name in names}
    server = [line for line in result["serve"] if not is_onnxruntime(line)]
    cpu_runtime = next(line for line in result["serve"] if is_onnxruntime(line))
    gpu_runtime = next(line for line in result["gpu"] if is_onnxruntime(line))
    result["gpu"] = [gpu_runtime] + server
    # Linux x86_64 is where CUDA machines are; the CUDA build runs on CPUs too (as `make setup` always installed)
    runtimes = [f'{gpu_runtime}; platform_system == "Linux" and platform_machine == "x86_64"',
                f'{cpu_runtime}; platform_system != "Linux" or platform_machine != "x86_64"']
    everything = [line for name in names if name != "gpu" for line in result[name] if not is_onnxruntime(line)]
    result["all"] = runtimes + list(dict.fromkeys(everything))
    result["dev"] = requirement_lines("dev_requirements")
    return result


def stage_notebooks() -> list[str]:
    "The notebooks the pipeline runs: the values of `STAGES` in ainative/pipeline.py, read without importing it."
    tree = ast.parse((ROOT / cfg["lib_path"] / "pipeline.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "STAGES":
            return list(ast.literal_eval(node.value).values())
    raise RuntimeError("ainative/pipeline.py defines no STAGES: the wheel cannot ship the stage notebooks.")


class BuildPyWithStages(build_py):
    "build_py that also copies the stage notebooks from nbs/ into the package as `ainative/stages/`, so a pip install runs the pipeline."

    def run(self):
        if not getattr(self, "editable_mode", False):  # a module deleted from the source must not linger in build/lib
            shutil.rmtree(Path(self.build_lib) / LIB, ignore_errors=True)
        super().run()
        if getattr(self, "editable_mode", False): return  # an editable install runs the checkout's nbs/ itself
        target = Path(self.build_lib) / LIB / "stages"
        target.mkdir(parents=True, exist_ok=True)
        for name in stage_notebooks():
            source = ROOT / cfg["nbs_path"] / name
            if not source.is_file():
                raise FileNotFoundError(f"{source} is missing: the wheel ships the stage notebooks from {cfg['nbs_path']}/.")
            shutil.copyfile(source, target / name)

    def get_outputs(self, include_bytecode=True):
        stages = [str(Path(self.build_lib) / LIB / "stages" / name) for name in stage_notebooks()]
        return super().get_outputs(include_bytecode) + ([] if getattr(self, "editable_mode", False) else stages)


licenses = {"apache2": "Apache-2.0"}  # SPDX expression
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable",
            "6 - Mature", "7 - Inactive"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=licenses[cfg["license"]],
    url=cfg["git_url"],
    keywords=cfg["keywords"],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"]) - 1],
        "Intended Audience :: " + cfg["audience"],
        "Natural Language :: " + cfg["language"],
        "Programming Language :: Python :: 3.11",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_namespace_packages(include=[LIB, f"{LIB}.*"], exclude=[f"{LIB}.stages", "*.__pycache__"]),
    package_data={LIB: ["assets/**/*"]},  # the bundled dataset and the server's UI files
    include_package_data=True,
    install_requires=requirement_lines("requirements"),
    extras_require=extras(),
    entry_points={"console_scripts": requirement_lines("console_scripts"),
                  "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    cmdclass={"build_py": BuildPyWithStages},
    zip_safe=False,
)
