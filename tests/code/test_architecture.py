"""The package's layering rules (issue 27), read from the code by the architecture chapter: no import runs upward
(hence no cycle), no function-local import of an ainative module, local third-party imports only for the heavy
packages named with a reason, modules and definitions of a readable size, no comparison of family or task names, and
a README picture drawn from today's imports."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from ainative.architecture import LAYERS, architecture_report, import_cycles, import_graph, layer_edges, package_folder

ROOT = Path(__file__).resolve().parents[2]
REPORT = architecture_report()


@pytest.mark.parametrize("rule", ["unlisted modules", "upward imports", "local ainative imports", "local imports without a reason"])
def test_the_layering_rules_hold(rule):
    assert REPORT[rule] == [], "\n".join(REPORT[rule])


def test_no_import_cycle():
    assert import_cycles(import_graph(package_folder())) == []


def test_modules_are_of_a_readable_size():
    limits = {"api": 600}  # the HTTP layer is the page a newcomer reads first
    too_long = {module: lines for lines, module in REPORT["largest modules"] if lines > limits.get(module, 800)}
    assert too_long == {}


def test_no_definition_is_over_60_lines():
    assert [(lines, name) for lines, name in REPORT["longest definitions"] if lines > 60] == []


def _compared_names(names: set[str]) -> list[str]:
    "`module.py:line` of every comparison (==, !=, in) of a value with one of `names` in the package."
    found = []
    for path in sorted(package_folder().glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare): continue
            operands = [node.left, *node.comparators]
            constants = {o.value for o in operands if isinstance(o, ast.Constant)}
            for o in operands:
                if isinstance(o, (ast.Tuple, ast.List, ast.Set)): constants |= {e.value for e in o.elts if isinstance(e, ast.Constant)}
            if constants & names: found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_module_compares_family_or_task_names():
    "Stages ask a family what it can do (chapter 2d); comparing its name is how the tangle started."
    import ainative.baseline, ainative.transformer  # noqa: F401  (registers the families that ship with ainative)
    from ainative.families import FAMILIES
    from ainative.tasks import TASKS
    assert {"transformer", "baseline"} <= set(FAMILIES) and "intent" in TASKS
    assert _compared_names(set(FAMILIES) | set(TASKS)) == []


def test_the_readme_picture_is_drawn_from_todays_imports():
    drawn = json.loads((ROOT / "nbs" / "images" / "layers.json").read_text())
    assert drawn == {"layers": [[name, list(modules)] for name, modules in LAYERS], "edges": layer_edges()}, \
        "the layers changed since the picture was drawn: run `make readme`"
    assert (ROOT / "nbs" / "images" / "layers.png").stat().st_size > 10_000
    assert "![ainative's layers, drawn from the code's imports](nbs/images/layers.png)" in (ROOT / "README.md").read_text()
