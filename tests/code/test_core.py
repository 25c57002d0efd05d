"""Units of ainative.core: value coercion, typed configs, CLI parsing, atomic writes, run dirs, devices."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest

import ainative.core as core
from ainative.core import (AinativeError, ConfigError, DeviceInfo, RunDir, StageConfig, atomic_write_json,
                           atomic_write_text, coerce_value, detect_device, parse_key_values, select_onnx_providers)
from ainative.data import DataConfig


# ----------------------------------------------------------------------------------------------- coerce_value
@pytest.mark.parametrize("value, annotation, expected", [
    ("3", int, 3),
    (" 12 ", int, 12),
    (3.0, int, 3),
    ("2.5", float, 2.5),
    (4, float, 4.0),
    ("true", bool, True),
    (" Yes ", bool, True),
    ("off", bool, False),
    ("0", bool, False),
    (False, bool, False),
    ("none", int | None, None),
    ("", int | None, None),
    (None, str | None, None),
    ("7", int | None, 7),
    ("runs/x", str | None, "runs/x"),
    ("2", int | str, 2),
    ("abc", int | str, "abc"),
    ("drop", Literal["error", "drop"], "drop"),
    ("0.7,0.2,0.1", tuple[float, float, float], (0.7, 0.2, 0.1)),
    ("[0.6, 0.3, 0.1]", tuple[float, float, float], (0.6, 0.3, 0.1)),
    ([1, "2"], list[int], [1, 2]),
    ("a, b ,c", list[str], ["a", "b", "c"]),
    ("", list[str], []),
    ("1,2,3", tuple[int, ...], (1, 2, 3)),
    ("data/x.csv", Path, Path("data/x.csv")),
    (5, str, "5"),
    (Path("p"), str, "p"),
], ids=lambda v: repr(v)[:30])
def test_coerce_value_converts(value, annotation, expected):
    result = coerce_value(value, annotation, "param")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value, annotation, fragment", [
    ("abc", int, "is not an integer"),
    ("3.5", int, "is not an integer"),
    (3.5, int, "is not an integer"),
    (True, int, "is not a number"),
    (None, int, "is not an integer"),
    ("fast", float, "is not a number"),
    ("maybe", bool, "is not a boolean"),
    (1, bool, "is not a boolean"),
    ("DROP", Literal["error", "drop"], "is not one of ['error', 'drop']"),
    ("x", int | float, "fits none of"),
    ("0.5,0.5", tuple[float, float, float], "needs 3 items, got 2"),
    ("1,x", list[int], "is not an integer"),
    (5, list[int], "is not a list"),
    ({"a": 1}, str, "is not a string"),
    (None, str, "is not a string"),
], ids=lambda v: repr(v)[:30])
def test_coerce_value_rejects(value, annotation, fragment):
    with pytest.raises(ConfigError) as info:
        coerce_value(value, annotation, "epochs")
    assert "Parameter 'epochs'" in info.value.what
    assert fragment in info.value.what
    assert isinstance(info.value, ValueError) and isinstance(info.value, AinativeError)


# ----------------------------------------------------------------------------------------------- StageConfig
@dataclass
class ToyConfig(StageConfig):
    epochs: int = 3
    lr: float = 1e-3
    name: str | None = None
    mode: Literal["fast", "slow"] = "fast"


def test_from_params_converts_each_field():
    config = ToyConfig.from_params({"epochs": "5", "lr": "0.01"}, name="none", mode="slow")
    assert config == ToyConfig(epochs=5, lr=0.01, name=None, mode="slow")
    assert DataConfig.from_params({"seed": "7", "fractions": "0.8,0.1,0.1", "on_bad_rows": "drop"}).to_dict()["fractions"] == [0.8, 0.1, 0.1]


def test_from_params_overrides_win():
    assert ToyConfig.from_params({"epochs": "5"}, epochs="9").epochs == 9


def test_from_params_unknown_key_is_named():
    with pytest.raises(ConfigError) as info:
        ToyConfig.from_params({"epochs": "2", "epoch": "3", "batch": "8"})
    assert "Unknown parameter(s) ['batch', 'epoch'] for ToyConfig" in info.value.what
    assert "['epochs', 'lr', 'mode', 'name']" in info.value.fix


def test_data_config_unknown_key_and_bad_value():
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) \['epochs'\] for DataConfig"):
        DataConfig.from_params({"epochs": 3})
    with pytest.raises(ConfigError, match="must be three positive numbers that sum to 1"):
        DataConfig.from_params({"fractions": "0.5,0.5,0.5"})
    with pytest.raises(ConfigError, match="is not one of"):
        DataConfig.from_params({"on_bad_rows": "ignore"})


# ----------------------------------------------------------------------------------------------- parse_key_values
def test_parse_key_values():
    assert parse_key_values(["epochs=3", " dataset = banking77 ", "filter=a=b", "empty="]) == \
        {"epochs": "3", "dataset": "banking77", "filter": "a=b", "empty": ""}
    assert parse_key_values(None) == {}
    assert parse_key_values([]) == {}


@pytest.mark.parametrize("item", ["epochs", "=3", "  =x"])
def test_parse_key_values_rejects(item):
    with pytest.raises(ConfigError) as info:
        parse_key_values(["ok=1", item])
    assert repr(item) in info.value.what
    assert "key=value" in info.value.fix


# ----------------------------------------------------------------------------------------------- atomic writes
def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_json_writes_sorted_json(tmp_path):
    path = atomic_write_json(tmp_path / "sub" / "x.json", {"b": 1, "a": "é"})
    assert path == tmp_path / "sub" / "x.json"
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'
    assert _temp_files(path.parent) == []


def test_atomic_write_json_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "params.json"
    atomic_write_json(path, {"epochs": 3})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        atomic_write_json(path, {"epochs": 4, "callback": object()})
    assert path.read_bytes() == before
    assert json.loads(before) == {"epochs": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.json"]


def test_atomic_write_text_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "notes.txt"
    atomic_write_text(path, "old")
    def failing_replace(src, dst):
        raise OSError("simulated rename failure")
    monkeypatch.setattr(core.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated rename failure"):
        atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ----------------------------------------------------------------------------------------------- RunDir
def test_run_dir_create_given_path(tmp_path):
    run = RunDir.create(tmp_path / "a" / "run-1")
    assert run.path == (tmp_path / "a" / "run-1").resolve() and run.path.is_dir()
    assert run.id == "run-1"
    assert run.data == run.path / "data" and run.params_path == run.path / "params.json"
    assert not run.data.exists()  # paths only, nothing else is created
    assert RunDir.create(run.path) == run  # an existing folder is reused


def test_run_dir_create_default_goes_under_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("AINATIVE_RUNS_DIR", str(tmp_path / "all-runs"))
    run = RunDir.create()
    assert run.path.parent == (tmp_path / "all-runs").resolve()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run.id)
    assert run.path.is_dir()
    assert RunDir.create().id != run.id


def test_run_dir_create_refuses_a_file(tmp_path):
    (tmp_path / "not-a-folder").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        RunDir.create(tmp_path / "not-a-folder")


def test_record_params_keeps_other_stages(tmp_path):
    run = RunDir.create(tmp_path / "run")
    assert run.read_params() == {}
    run.record_params("data", {"seed": 42, "dataset": "banking77"})
    all_params = run.record_params("train", {"epochs": 3})
    assert all_params == {"data": {"seed": 42, "dataset": "banking77"}, "train": {"epochs": 3}}
    run.record_params("data", {"seed": 7})  # a stage's entry is replaced, not merged
    assert json.loads(run.params_path.read_text(encoding="utf-8")) == {"data": {"seed": 7}, "train": {"epochs": 3}}
    assert RunDir.create(tmp_path / "run").read_params() == {"data": {"seed": 7}, "train": {"epochs": 3}}
    assert _temp_files(run.path) == []


# ----------------------------------------------------------------------------------------------- devices
def test_detect_device_cpu():
    info = detect_device("cpu")
    assert isinstance(info, DeviceInfo)
    assert info.kind == "cpu" and info.count == 1 and info.bf16 is False
    assert info.reason == "asked for the CPU"


def test_detect_device_rejects_unknown():
    with pytest.raises(ConfigError, match="Unknown device 'tpu'"):
        detect_device("tpu")


def test_select_onnx_providers_cpu():
    assert select_onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert select_onnx_providers("cpu", tensorrt=True) == ["CPUExecutionProvider"]


def test_detect_device_cuda_without_gpu_raises():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available(): pytest.skip("torch sees a CUDA GPU here")
    with pytest.raises(ConfigError) as info:
        detect_device("cuda")
    assert "torch sees no usable CUDA GPU" in info.value.what
    assert info.value.fix
    assert detect_device("auto").kind == "cpu"


# ----------------------------------------------------------------------------------------------- normalize_text
@pytest.mark.parametrize("raw, expected", [
    ("  Ｗhere   is\tmy\u00a0parcel?\n", "Where is my parcel?"),   # full-width letter, tab, no-break space
    ("ﬁnd my ２ orders", "find my 2 orders"),                        # ligature, full-width digit
    ("line one\r\nline two\u2028three", "line one line two three"),  # every kind of line break
    ("\u3000\u2003 ", ""),                                           # only (ideographic, em) spaces
    ("café", "café"),                                                # composed and decomposed é agree
    ("cafe\u0301", "café"),
    ("already clean", "already clean"),
], ids=repr)
def test_normalize_text(raw, expected):
    assert core.normalize_text(raw) == expected
    assert core.normalize_text(expected) == expected  # idempotent


def test_one_normalisation_for_training_and_serving():
    "The data stage uses core's function (the one serving imports); the old import path still works."
    import ainative.data as data
    assert data.normalize_text is core.normalize_text
    raw = {"train": pd.DataFrame({"text": ["Ｗhere  is\u00a0it"], "label": ["delivery"], "row": [1]})}
    cleaned, _ = data.clean_splits(raw)
    assert cleaned["train"].text.tolist() == [core.normalize_text("Ｗhere  is\u00a0it")]


def test_core_imports_without_pandas_or_torch():
    "Serving imports normalize_text from core: importing core must not pull in the heavy libraries."
    import subprocess
    import sys
    code = ("import sys, ainative.core\n"
            "heavy = sorted({'pandas', 'torch', 'numpy', 'sklearn', 'transformers'} & set(sys.modules))\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_core_needs_only_the_standard_library():
    "CI prints the CPU from ainative.core before any environment exists, so core must import with site-packages off."
    import subprocess, sys
    root = Path(core.__file__).resolve().parents[1]
    printed = subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path.insert(0, '.'); "
                              "from ainative.core import cpu_features, describe_cpu; print(describe_cpu(cpu_features()))"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
    assert "cores" in printed and "vector units:" in printed


def test_cpu_features_reads_x86_and_arm_flags():
    x86 = core.cpu_features("processor : 0\nflags : fpu avx2 avx512f avx512_vnni amx_int8\n")
    assert x86["vector_flags"] == ["avx2", "avx512f", "avx512_vnni", "amx_int8"]
    assert core.cpu_features("Features : fp asimd asimddp i8mm")["vector_flags"] == ["asimd", "asimddp", "i8mm"]
    assert core.cpu_features("")["vector_flags"] == [] and "none that ainative knows" in core.describe_cpu(core.cpu_features(""))
