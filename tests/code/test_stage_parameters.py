"""One home per default: each stage's config dataclass. The notebooks' papermill `parameters` cells, the pipeline
profiles and the stage runs must agree with it, and every field must be reachable from `ainative pipeline -p`."""
from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import nbformat
import pytest

from ainative.pipeline import PROFILES, STAGES, stage_parameters

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"data": "ainative.data:DataConfig", "training": "ainative.training:TrainingConfig",
           "registry": "ainative.registry:RegistryConfig", "optimization": "ainative.optimize:OptimizationConfig",
           "explainability": "ainative.explain:ExplainConfig", "abstention": "ainative.abstention:AbstentionConfig"}
NOT_PARAMETERS: dict[str, dict[str, str]] = {  # stage -> field -> why it is not in the parameters cell
    stage: {} for stage in STAGES}
OTHER_OWNERS: dict[str, str] = {}  # stages whose notebooks are not yet brought in line (none)


def config_class(stage: str) -> type:
    module, name = CONFIGS[stage].split(":")
    return getattr(importlib.import_module(module), name)


def notebook_cells(stage: str) -> list:
    return nbformat.read(ROOT / "nbs" / STAGES[stage], as_version=4).cells


def parameters_cell(stage: str) -> dict[str, object]:
    "name -> literal default of the stage notebook's `parameters` cell, in order."
    cell = next(c for c in notebook_cells(stage) if "parameters" in c.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}


def top_level_names(source: str) -> set[str]:
    "Names a cell binds at the notebook's top level (assignments, loops, with-as, imports, defs; not inside functions)."
    names = set()
    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name); return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store): names.add(node.id)
        if isinstance(node, ast.alias): names.add((node.asname or node.name).split(".")[0])
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)): return
        for child in ast.iter_child_nodes(node): visit(child)
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    visit(ast.parse("\n".join(lines)))
    return names


def test_every_stage_has_a_config():
    assert set(CONFIGS) == set(STAGES)


@pytest.mark.parametrize("stage", list(STAGES))
def test_parameters_cell_declares_every_field(stage, request):
    "Each field of the stage's config is a papermill parameter (so `ainative pipeline -p field=...` reaches it)."
    if stage in OTHER_OWNERS: request.applymarker(pytest.mark.xfail(reason=OTHER_OWNERS[stage], strict=True))
    fields = [f.name for f in dataclasses.fields(config_class(stage)) if f.name not in NOT_PARAMETERS[stage]]
    assert list(parameters_cell(stage)) == fields, f"{STAGES[stage]}: the parameters cell must list {fields}, in order"


@pytest.mark.parametrize("stage", list(STAGES))
def test_parameters_cell_defaults_are_the_dataclass_defaults(stage):
    "A literal in a parameters cell (papermill needs literals) equals the dataclass default, once converted."
    config = config_class(stage)
    defaults = config()
    for name, literal in parameters_cell(stage).items():
        assert name in {f.name for f in dataclasses.fields(config)}, f"{STAGES[stage]}: {name} is not a {config.__name__} field"
        assert getattr(config.from_params({name: literal}), name) == getattr(defaults, name), \
            f"{STAGES[stage]}: {name} = {literal!r}, but {config.__name__}.{name} defaults to {getattr(defaults, name)!r}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_no_cell_rebinds_a_parameter_before_the_stage_runs(stage):
    "Demo cells between the parameters cell and the stage run must not overwrite a parameter papermill set."
    cells = notebook_cells(stage)
    start = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    run = next(i for i, c in enumerate(cells) if c.cell_type == "code" and ".from_params(" in c.source and
               "#| export" not in c.source and i > start and "## Run the stage" in "".join(
                   m.source for m in cells[start:i] if m.cell_type == "markdown"))
    parameters = set(parameters_cell(stage))
    for cell in cells[start + 1:run]:
        if cell.cell_type != "code" or cell.source.lstrip().startswith("#| export"): continue
        clobbered = top_level_names(cell.source) & parameters
        assert not clobbered, f"{STAGES[stage]} cell {cell.get('id')} rebinds the parameter(s) {sorted(clobbered)}"


@pytest.mark.parametrize("profile", list(PROFILES))
def test_profiles_do_not_restate_defaults(profile):
    "A profile sets only what differs from the stage's defaults, so a default changes in one place."
    for stage, values in PROFILES[profile].items():
        config = config_class(stage)
        for name, value in values.items():
            assert getattr(config.from_params({name: value}), name) != getattr(config(), name), \
                f"PROFILES[{profile!r}][{stage!r}][{name!r}] = {value!r} is the default already"


def test_pipeline_overrides_reach_their_stages():
    "`-p name=value` goes to every stage that declares `name`, including the fields that used to be unreachable."
    overrides = {"test_file": "test.csv", "validation_file": "validation.csv", "fractions": "0.8,0.1,0.1",
                 "encoding": "latin-1", "warmup_fraction": "0.2", "weight_decay": "0", "gradient_accumulation_steps": "2",
                 "tolerance": "0.01", "max_int8_drop": "0.02", "seed": "3"}
    routed = stage_parameters("smoke", overrides)
    assert {k: routed["data"][k] for k in ("test_file", "validation_file", "fractions", "encoding", "seed")} == \
        {"test_file": "test.csv", "validation_file": "validation.csv", "fractions": "0.8,0.1,0.1", "encoding": "latin-1", "seed": "3"}
    assert {k: routed["training"][k] for k in ("warmup_fraction", "weight_decay", "gradient_accumulation_steps", "seed")} == \
        {"warmup_fraction": "0.2", "weight_decay": "0", "gradient_accumulation_steps": "2", "seed": "3"}
    assert routed["registry"]["tolerance"] == "0.01" and routed["optimization"]["max_int8_drop"] == "0.02"
    assert "test_file" not in routed["training"] and "tolerance" not in routed["data"]


# A pipeline runs a stage notebook without its demonstrations (`pipeline_notebook`), so its stage run must need
# nothing that only a demonstration defines.
IPYTHON_NAMES = {"display", "get_ipython"}  # what an IPython kernel provides besides the builtins


def bound_names(source: str) -> set[str]:
    "Names a cell binds at the top level, including `from module import *` of an importable module."
    names = top_level_names(source)
    for node in ast.walk(ast.parse(without_magics(source))):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            module = importlib.import_module(node.module)
            names |= set(getattr(module, "__all__", [name for name in vars(module) if not name.startswith("_")]))
    return names


def without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def global_references(source: str) -> set[str]:
    "Module-level names a cell reads without binding them itself (symtable: every scope, comprehensions included)."
    import symtable
    referenced, tables = set(), [symtable.symtable(without_magics(source), "cell", "exec")]
    while tables:
        table = tables.pop()
        top = table.get_type() == "module"
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (symbol.is_global() or (top and not symbol.is_assigned() and not symbol.is_imported())):
                referenced.add(symbol.get_name())
        tables.extend(table.get_children())
    return referenced


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_run_needs_no_demonstration(stage):
    "Every name the `pipeline` cells read is bound by a cell the pipeline runs (or is a builtin)."
    import builtins
    from ainative.pipeline import PIPELINE_TAG, pipeline_notebook
    kept = [cell for cell in pipeline_notebook(ROOT / "nbs" / STAGES[stage]).cells if cell.cell_type == "code"]
    bound = set(dir(builtins)) | IPYTHON_NAMES
    for cell in kept: bound |= bound_names(cell.source)
    for cell in kept:
        if PIPELINE_TAG not in cell.metadata.get("tags", []): continue
        missing = global_references(cell.source) - bound
        assert not missing, f"{STAGES[stage]} cell {cell.get('id')} uses {sorted(missing)}, which only demonstration cells define"


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_run_is_tagged_for_the_pipeline(stage):
    "The cell that builds `parameters` from the config and runs the stage is among the cells a pipeline runs."
    from ainative.pipeline import PIPELINE_TAG
    runs = [cell for cell in notebook_cells(stage) if PIPELINE_TAG in cell.metadata.get("tags", [])]
    assert any(".from_params(" in cell.source and "fields(" in cell.source for cell in runs), \
        f"{STAGES[stage]}: tag its 'Run the stage' cells '{PIPELINE_TAG}'"
    assert all(".from_params(" not in cell.source or PIPELINE_TAG in cell.metadata.get("tags", [])
               for cell in notebook_cells(stage)[notebook_cells(stage).index(runs[0]):])


MODEL_STAGES = ("registry", "optimization", "explainability")


class FakeRegistry:
    "Only what `served_model_name` asks of a registry: the names it holds."
    def __init__(self, names): self._names = sorted(names)
    def names(self): return self._names
  # the stages that name the registered model


def test_smoke_and_full_register_different_models_and_full_is_what_is_served():
    "After a smoke run and a full run, the full (Banking77) model is the one `ainative serve` serves by default."
    from ainative.registry import RegistryConfig
    from ainative.serving import ServingConfig, served_model_name
    names = {profile: {stage: stage_parameters(profile, stages=[stage])[stage].get(
                 "model_name", getattr(config_class(stage)(), "model_name")) for stage in MODEL_STAGES}
             for profile in PROFILES}
    assert all(len(set(by_stage.values())) == 1 for by_stage in names.values()), names  # one name through a run
    smoke, full = names["smoke"]["registry"], names["full"]["registry"]
    assert smoke != full and full == RegistryConfig.model_name
    assert served_model_name(ServingConfig.model, FakeRegistry([smoke, full])) == full  # both registered: the full one
    assert served_model_name(ServingConfig.model, FakeRegistry([smoke])) == smoke      # after `make run` alone: the smoke one
    assert smoke.startswith(RegistryConfig.model_name)  # derived from the one home of the name
