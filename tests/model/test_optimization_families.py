"""The optimisation stage asks the version's family what it can do (chapter 2d), never its name: a family without
`onnx` is refused with a clear `CapabilityError`; one with `onnx` but not `int8` (as the TF-IDF baseline) is measured
and promoted, and keeps its own ONNX file (nothing attached). The baseline itself is covered end to end by
tests/baseline/test_baseline_pipeline.py."""
from __future__ import annotations

import shutil

import pytest
from family_runs import tiny_data_run

from ainative.core import CapabilityError, RunDir
from ainative.families import register_family
from ainative.model import load_tokenizer
from ainative.optimize import OptimizationConfig, optimize_model
from ainative.registry import Registry
from ainative.transformer import TransformerFamily

NAME = "optimize-families"


# Families of the tests' own: stored like the transformer (so a run's model registers), able to do less.
class OwnOnnx(TransformerFamily):
    "A family that serves its own ONNX file and cannot be quantised (as the TF-IDF baseline)."
    name, capabilities = "test-own-onnx", frozenset({"onnx"})


class NoOnnx(TransformerFamily):
    "A family that serves no ONNX file at all."
    name, capabilities = "test-no-onnx", frozenset({"logits", "embeddings"})


OWN_ONNX, NO_ONNX = register_family(OwnOnnx()), register_family(NoOnnx())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "A run with the bundled data and a tiny random classifier on its labels (never a real model)."
    return tiny_data_run(tmp_path_factory.mktemp("optimize-families") / "run", load_tokenizer())


def registered_as(family: str, tiny_run, folder) -> tuple[RunDir, Registry, str]:
    "A private copy of the tiny run, registered (not promoted) as a `family` version in a fresh registry that the run records."
    run = RunDir(shutil.copytree(tiny_run, folder / "run"))
    registry = Registry(folder / "registry")
    version = registry.register(run.path, NAME, family=family)
    assert registry.show(NAME, version)["family"] == family
    run.record_params("registry", {"model_name": NAME, "version": version, "registry_dir": str(registry.root)})
    return run, registry, version


def fast(run: RunDir) -> OptimizationConfig:
    return OptimizationConfig(run_dir=str(run.path), model_name=NAME, bench_seconds=0.02, batch_sizes=(8,), max_int8_drop=1.0,
                              probe_size=10)


def test_a_family_without_onnx_is_refused_before_any_work(tiny_run, tmp_path):
    run, registry, version = registered_as(NO_ONNX.name, tiny_run, tmp_path)
    with pytest.raises(CapabilityError, match="cannot be benchmarked or gated by the optimisation stage") as caught:
        optimize_model(fast(run))
    assert "'onnx'" in caught.value.what and "test-no-onnx can do: embeddings, logits" in caught.value.fix
    assert not run.onnx.exists() and "onnx" not in registry.attachments(NAME, version)


def test_a_family_without_int8_is_measured_and_promoted_and_keeps_its_own_onnx(tiny_run, tmp_path):
    run, registry, version = registered_as(OWN_ONNX.name, tiny_run, tmp_path)
    result = optimize_model(fast(run))
    assert (run.onnx / "model.onnx").is_file() and result.report["source"]["model_dir"] == str(run.model)  # the run's transformer
    assert "onnx" not in registry.attachments(NAME, version)  # its own ONNX file serves
    assert not (registry.resolve(NAME, version) / "onnx").exists()
    assert result.report["promotion"] == {"ok": True, "alias": "production", "version": version}
    assert registry.aliases(NAME)["production"] == version and registry.verify(NAME, version) == []
