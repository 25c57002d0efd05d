"""The flywheel notebook as papermill runs it: its `parameters` cell declares every FlywheelConfig field with the
dataclass's default (one home per default), and papermill sees them."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import nbformat

from ainative.flywheel import FlywheelConfig

NOTEBOOK = Path(__file__).resolve().parents[2] / "nbs" / "12_flywheel.ipynb"


def test_parameters_cell_holds_the_config_defaults():
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    declared = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    assert declared == {field.name: field.default for field in dataclasses.fields(FlywheelConfig)}


def test_papermill_sees_the_parameters():
    import papermill
    assert set(papermill.inspect_notebook(str(NOTEBOOK))) == {field.name for field in dataclasses.fields(FlywheelConfig)}
