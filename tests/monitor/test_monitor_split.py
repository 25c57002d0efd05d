"""The monitoring chapter in three modules: the reference profile (tasks layer), the request store (registry layer) and
the monitoring stage, which imports back what moved down so that `from ainative.monitor import ...` keeps working."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ainative
from ainative import monitor, reference, store
from ainative.core import ConfigError
from ainative.reference import DriftInputError, attach_reference, check_profile, reference_profile

PACKAGE = Path(ainative.__file__).parent
HEAVY = ("pandas", "sqlalchemy", "scipy", "sklearn", "matplotlib", "torch", "transformers")

IMPORT_REFERENCE = """
import json, sys
import ainative.reference
print(json.dumps({"heavy": sorted(m for m in %r if m in sys.modules),
                  "ainative": sorted(m for m in sys.modules if m.startswith("ainative."))}))
""" % (HEAVY,)


def test_reference_imports_only_core_and_numpy():
    "Families and the server import the reference profile: it loads no database, dataframe or statistics package."
    finished = subprocess.run([sys.executable, "-c", IMPORT_REFERENCE], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report == {"heavy": [], "ainative": ["ainative.core", "ainative.reference"]}


BEFORE_THE_SPLIT = [  # ainative.monitor.__all__ when the store and the reference profile were defined in it
    "METADATA", "REQUESTS", "FEEDBACK", "REQUEST_COLUMNS", "ANSWERED", "ROLES", "PSI_EPSILON", "CONFIDENCE_EDGES", "LENGTH_EDGES",
    "PROFILE_KEYS", "MonitorConfig", "check_salt", "default_database_url", "MonitorStoreError", "FeedbackError", "DriftInputError",
    "store_error", "RequestStore", "text_hash", "request_row", "window_embeddings", "version_summary", "shadow_pairs",
    "accuracy_test", "paired_accuracy_test", "compare_models", "psi", "bucket_counts", "reference_profile", "unknown_rate_summary",
    "label_counts", "label_psi", "label_chi2", "ks_test", "low_confidence_share", "embedding_drift_auc", "check_profile",
    "attach_reference", "load_reference", "drift_report", "accuracy_alerts", "plot_label_shift", "plot_histograms",
    "plot_feedback_accuracy", "monitor_report", "drift_over_time", "plot_drift_timeline"]


def test_monitor_imports_back_what_moved():
    "Every name `ainative.monitor` had is still there; what moved down is the very object of its new module."
    assert [name for name in BEFORE_THE_SPLIT if not hasattr(monitor, name)] == []
    moved = {name: module for module in (reference, store) for name in module.__all__}
    assert {name for name in BEFORE_THE_SPLIT if name in moved} == set(BEFORE_THE_SPLIT) - set(monitor.__all__)
    assert [name for name in BEFORE_THE_SPLIT if name in moved and getattr(monitor, name) is not getattr(moved[name], name)] == []


def _definitions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node


@pytest.mark.parametrize("name", ["reference", "store", "monitor"])
def test_module_shape(name):
    "Under 800 lines, no definition over 60 lines, and no import inside a function but of a heavy package (scipy, ...)."
    text = (PACKAGE / f"{name}.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert len(text.splitlines()) < 800
    first_line = lambda node: node.decorator_list[0].lineno if node.decorator_list else node.lineno
    assert [node.name for node in _definitions(tree) if node.end_lineno - first_line(node) + 1 > 60] == []
    local = set()
    for function in (node for node in _definitions(tree) if not isinstance(node, ast.ClassDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom): local.add("." if node.level else node.module.split(".")[0])
            if isinstance(node, ast.Import): local.update(alias.name.split(".")[0] for alias in node.names)
    assert local <= {"scipy", "sklearn", "matplotlib"}, local


class AttachmentsInMemory:
    "Just what `attach_reference` calls: a registry stand-in that keeps attached files in a dict."
    def __init__(self): self.attached: dict[tuple[str, str], dict] = {}
    def attachments(self, name, version_or_alias): return {"monitoring": {}} if (name, version_or_alias) in self.attached else {}
    def attach(self, name, version_or_alias, kind, source, info=None):
        files = {path.name: json.loads(path.read_text()) for path in Path(source).iterdir()}
        self.attached[(name, version_or_alias)] = {"kind": kind, "files": files, "info": info}
        return self.attached[(name, version_or_alias)]


def test_attach_reference_needs_only_the_two_registry_methods():
    profile = reference_profile(["a", "b"], np.array([[0.9, 0.1], [0.3, 0.7]]), [12, 30])
    registry = AttachmentsInMemory()
    assert attach_reference(registry, "m", "v0001", profile) == "attached to m v0001"
    assert registry.attached[("m", "v0001")] == {"kind": "monitoring", "files": {"reference.json": profile}, "info": {"examples": 2}}
    assert "already has" in attach_reference(registry, "m", "v0001", profile)
    with pytest.raises(DriftInputError, match="embeddings"):
        attach_reference(registry, "m", "v0002", {key: value for key, value in profile.items() if key != "embeddings"})
    assert ("m", "v0002") not in registry.attached


def test_profile_defaults_and_config_share_one_embedding_sample():
    assert store.MonitorConfig().embedding_sample == reference.EMBEDDING_SAMPLE
    vectors = np.random.default_rng(0).normal(size=(reference.EMBEDDING_SAMPLE + 50, 4))
    profile = reference_profile(["a"], np.ones((len(vectors), 1)), [10] * len(vectors), embeddings=vectors)
    assert len(check_profile(profile)["embeddings"]["sample"]) == reference.EMBEDDING_SAMPLE


@pytest.mark.parametrize("fields, where", [
    ({"psi_warn": 0.3, "psi_alert": 0.2}, "psi_warn"), ({"low_confidence_warn": 0.2, "low_confidence_alert": 0.1}, "low_confidence_warn"),
    ({"unknown_rate_alert": 1.5}, "unknown_rate_warn"), ({"auc_warn": 0.4}, "auc_alert"), ({"compare_alpha": 1.0}, "compare_alpha"),
    ({"min_feedback": 0}, "min_feedback"), ({"busy_timeout_s": float("nan")}, "busy_timeout_s"), ({"window_hours": 0.0}, "window_hours"),
    ({"text_privacy": "everything"}, "text_privacy")])
def test_monitor_config_refuses_what_cannot_work(fields, where):
    with pytest.raises(ConfigError) as caught:
        store.MonitorConfig(**fields)
    assert caught.value.where == f"MonitorConfig.{where}"
