"""BaselineRuntime is a `Runtime` (chapter 2d) like the transformer's: texts in, calibrated probabilities out; onnxruntime and
numpy only. The serving engine opens it through the version's family, never by comparing family names."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ainative.baseline import BASELINE, BaselineRuntime, baseline_session, onnx_probabilities
from ainative.core import IntegrityError, ModelNotFoundError, softmax
from ainative.families import Inference, Runtime, RuntimeOptions, can
from ainative.serving import ModelRuntime, open_version
from ainative.transformer import TRANSFORMER

from baseline_fixtures import MODEL, TEMPLATES


def opened(registry, version: str, **options) -> BaselineRuntime:
    "The version opened as the serving engine opens it: verified by the registry, opened by its family."
    return open_version(registry, MODEL, version, RuntimeOptions(**options))


def test_it_is_a_runtime_and_fakes_nothing(baseline_version):
    registry, version = baseline_version
    runtime = opened(registry, version)
    assert isinstance(runtime, BaselineRuntime) and isinstance(runtime, Runtime) and isinstance(runtime, ModelRuntime)
    assert runtime.family == "baseline" and registry.version_family(MODEL, version) is BASELINE
    assert can(BASELINE, "onnx") and not any(can(BASELINE, c) for c in ("logits", "embeddings", "attributions", "int8", "finetune"))
    assert runtime.version == version and runtime.variant == "model.onnx" and runtime.provider == "CPUExecutionProvider"
    assert runtime.labels == sorted(TEMPLATES) and runtime.embeds is False  # the data stage's sorted label ids
    assert not hasattr(runtime, "max_length") and not hasattr(runtime, "tokenizer")  # no tokens: nothing pretends otherwise
    assert runtime.reference["labels"] == runtime.labels and runtime.reference["embeddings"] is None  # drift is watched
    described = runtime.describe()
    assert (described["family"], described["task"], described["version"]) == ("baseline", "intent", version)
    assert "max_length" not in described and described["sentence_embedding"] is False
    assert described["metrics"]["test_accuracy"] == runtime.manifest["metrics"]["test"]["accuracy"]


def test_it_answers_the_templated_intents(baseline_version):
    registry, version = baseline_version
    runtime = opened(registry, version)
    texts = ["Where is my umbrella?", "I want a refund for the umbrella", "please cancel the umbrella",
             "send the umbrella to a new address"]
    inference = runtime.infer(texts)
    assert isinstance(inference, Inference)
    assert [runtime.labels[i] for i in inference.probabilities.argmax(1)] == ["delivery_status", "refund", "cancel_order", "change_address"]
    assert np.allclose(inference.probabilities.sum(1), 1) and np.isfinite(inference.probabilities).all()
    assert inference.embeddings is None and inference.unknown_rates == [None] * 4 and inference.truncated == [False] * 4
    probabilities, truncated = runtime.predict(texts[:1])
    assert probabilities.shape == (1, len(runtime.labels)) and truncated == [False]


def test_probabilities_are_calibrated_with_the_versions_temperature(baseline_version):
    registry, version = baseline_version
    runtime = opened(registry, version)
    assert runtime.temperature == runtime.manifest["metrics"]["calibration"]["temperature"] != 1.0
    raw = onnx_probabilities(baseline_session(runtime.folder / "onnx" / "model.onnx"), ["where is my kettle"])
    expected = softmax(np.log(raw.astype(np.float64)), runtime.temperature)
    assert np.allclose(runtime.predict(["Where is my kettle"])[0], expected, atol=1e-6)


def test_texts_are_cut_to_max_text_chars(baseline_version):
    registry, version = baseline_version
    runtime = opened(registry, version, max_text_chars=20)
    inference = runtime.infer(["where is my kettle", "where is my kettle " + "please " * 50, "x" * 10_000])
    assert inference.truncated == [False, True, True]
    assert np.allclose(runtime.infer(["where is my kettle please please"]).probabilities,
                       runtime.infer(["where is my kettle p"]).probabilities)  # the model saw the first 20 characters only


def test_odd_texts_still_get_probabilities(baseline_version):
    registry, version = baseline_version
    runtime = opened(registry, version)
    probabilities = runtime.infer(["?!", "é", "😀😀", "a", "12345"]).probabilities
    assert probabilities.shape == (5, 4) and np.isfinite(probabilities).all() and np.allclose(probabilities.sum(1), 1)


def test_the_versions_family_opens_it(baseline_version, tmp_path):
    from ainative.demo import make_demo_run
    registry, version = baseline_version
    registry.promote(MODEL, version, "production")
    assert isinstance(opened(registry, "production"), BaselineRuntime) and opened(registry, "production").version == version
    transformer = registry.register(make_demo_run(tmp_path / "demo").path, MODEL)
    assert registry.version_family(MODEL, transformer) is TRANSFORMER
    with pytest.raises(ModelNotFoundError, match="has no ONNX export"):  # the transformer's runtime says what it lacks
        opened(registry, transformer)


def test_a_wrong_variant_or_a_damaged_version_is_refused(baseline_version):
    registry, version = baseline_version
    with pytest.raises(ModelNotFoundError, match="no ONNX variant"):
        opened(registry, version, variant="model.int8.onnx")
    calibration = registry.resolve(MODEL, version) / "calibration" / "calibration.json"
    calibration.chmod(0o644)
    calibration.write_text(json.dumps({"temperature": -1}))
    with pytest.raises(IntegrityError, match="failed verification"):
        opened(registry, version)


ANSWER_ONE = """
import json, sys
from ainative.registry import Registry
from ainative.serving import open_version
runtime = open_version(Registry(sys.argv[1]), "intent-classifier", sys.argv[2])
probabilities, _ = runtime.predict(["where is my kettle"])
print(json.dumps({"label": runtime.labels[int(probabilities[0].argmax())],
                  "heavy": sorted(m for m in ("torch", "transformers", "pandas", "sklearn", "skl2onnx") if m in sys.modules)}))
"""


def test_answering_imports_neither_torch_nor_pandas_nor_scikit_learn(baseline_version):
    registry, version = baseline_version
    finished = subprocess.run([sys.executable, "-c", ANSWER_ONE, str(registry.root), version], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report == {"label": "delivery_status", "heavy": []}
