"The notebooks are the source of truth: the package and README.md must be what they generate."
import shutil
import subprocess
import sys
from pathlib import Path

from ainative.docs import render_readme

ROOT = Path(__file__).resolve().parents[2]


def test_nbdev_export_leaves_package_unchanged(tmp_path):
    "Exporting the committed notebooks into a scratch copy gives exactly the committed modules."
    shutil.copy(ROOT / "settings.ini", tmp_path)
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs", symlinks=True)
    (tmp_path / "ainative").mkdir()
    for folder in (ROOT / "ainative").iterdir():  # hand-written package data (the migrations), which _modidx lists too
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            shutil.copytree(folder, tmp_path / "ainative" / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    exporter = Path(sys.executable).parent / "nbdev_export"
    subprocess.run([str(exporter)], cwd=tmp_path, check=True, capture_output=True, text=True)
    generated = {p.name: p.read_text() for p in (tmp_path / "ainative").glob("*.py")}
    committed = {p.name: p.read_text() for p in (ROOT / "ainative").glob("*.py")}
    assert sorted(generated) == sorted(committed), "modules differ: run `make export` and commit"
    stale = [name for name in committed if generated[name] != committed[name]]
    assert not stale, f"{stale} out of step with the notebooks: run `make export` and commit"


def test_readme_is_rendered_from_index():
    "README.md is exactly what `make readme` renders from nbs/index.ipynb."
    committed = (ROOT / "README.md").read_text(encoding="utf-8")
    assert committed == render_readme(ROOT / "nbs" / "index.ipynb"), "README.md is stale: run `make readme`"


def test_readme_gives_the_two_commands():
    "The README names the one set-up-and-run command and the one test command that CI runs."
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_parameters_tags_survive_cleaning():
    "Every stage notebook keeps a papermill `parameters` cell (nbdev_clean must not strip the tag)."
    import nbformat
    from ainative.pipeline import STAGES
    for notebook in STAGES.values():
        cells = nbformat.read(ROOT / "nbs" / notebook, as_version=4).cells
        assert any("parameters" in cell.metadata.get("tags", []) for cell in cells), notebook
    assert "allowed_cell_metadata_keys = tags" in (ROOT / "settings.ini").read_text()


def test_papermill_reads_every_parameter():
    "papermill parses each assignment of each parameters cell (it skips lines it cannot read, e.g. two '=')."
    import ast
    import nbformat
    import papermill
    from ainative.pipeline import STAGES
    for notebook in STAGES.values():
        path = ROOT / "nbs" / notebook
        cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        assigned = [node.targets[0].id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
        assert list(papermill.inspect_notebook(str(path))) == assigned, notebook


def test_profiles_only_use_declared_parameters():
    "Every parameter a profile sets is declared by that stage's notebook."
    from ainative.pipeline import PROFILES, STAGES, notebook_parameters, notebooks_dir
    for profile, stages in PROFILES.items():
        assert list(stages) == list(STAGES), profile
        for stage, params in stages.items():
            assert set(params) <= set(notebook_parameters(notebooks_dir() / STAGES[stage])), (profile, stage)
