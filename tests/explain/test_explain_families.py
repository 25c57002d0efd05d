"""The explainability stage asks the version's family for `attributions` (chapter 2d), never its name: without them
(as the TF-IDF baseline) the run's transformer is explained and nothing is attached to the version; without them and
without a transformer in the run, the stage refuses with a clear `CapabilityError`."""
from __future__ import annotations

import shutil

import pytest
from family_runs import tiny_data_run

from ainative.core import CapabilityError, RunDir
from ainative.explain import ExplainConfig, explain_model
from ainative.families import register_family
from ainative.registry import Registry
from ainative.transformer import TransformerFamily

NAME = "explain-families"


class Opaque(TransformerFamily):
    "A family stored like the transformer (so a run's model registers) that offers no attributions, as the TF-IDF baseline."
    name, capabilities = "test-opaque", frozenset({"onnx"})


OPAQUE = register_family(Opaque())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    "A run with the bundled data and a tiny random classifier on its labels (never a real model)."
    return tiny_data_run(tmp_path_factory.mktemp("explain-families") / "run", tokenizer)


@pytest.fixture
def opaque_version(tiny_run, tmp_path) -> tuple[RunDir, Registry, str]:
    "A private copy of the tiny run, registered in a fresh registry (which the run records) as a version of `Opaque`."
    run = RunDir(shutil.copytree(tiny_run, tmp_path / "run"))
    registry = Registry(tmp_path / "registry")
    version = registry.register(run.path, NAME, family=OPAQUE.name)
    assert registry.version_family(NAME, version) is OPAQUE
    run.record_params("registry", {"model_name": NAME, "version": version, "registry_dir": str(registry.root)})
    return run, registry, version


def small(run: RunDir) -> ExplainConfig:
    return ExplainConfig(run_dir=str(run.path), model_name=NAME, sample_size=4, n_steps=4, top_k=1, max_k=2, random_repeats=2)


def test_without_attributions_the_runs_transformer_is_explained_and_nothing_attached(opaque_version):
    run, registry, version = opaque_version
    result = explain_model(small(run))
    assert result.report["source"]["version"] is None and len(result.explanations) == 4
    assert result.report["calibration_attachment"] == "no registered version: not attached"
    assert result.report["monitoring_reference"] == "no registered version: not attached"
    assert not {"calibration", "reference"} & set(registry.attachments(NAME, version))
    assert (run.reports / "calibration.json").is_file()  # the run's own transformer was calibrated


def test_without_attributions_or_a_transformer_in_the_run_the_stage_refuses(opaque_version):
    run, registry, version = opaque_version
    shutil.rmtree(run.model)
    with pytest.raises(CapabilityError, match="cannot be explained, and the run has no trained transformer") as caught:
        explain_model(small(run))
    assert "'attributions'" in caught.value.what and "test-opaque can do: onnx" in caught.value.fix
    assert not (run.reports / "explain.json").exists()
