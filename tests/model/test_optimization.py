"Optimisation gates and runtime on a tiny random BERT: parity, accuracy, providers, bad files, registry attach."
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from ainative.core import AinativeError, ParityError
from ainative.demo import tiny_model, tiny_tokenizer
from ainative.optimize import (OnnxRunner, accuracy_gate, batched_logits, export_onnx, optimize_graph, parity_report,
                               quantize_int8, require_parity, torch_predictor)

TEXTS = [f"message {i} about my {w}" for i, w in enumerate(["refund", "parcel", "card", "password", "order"] * 20)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    tokenizer = tiny_tokenizer()
    model = tiny_model(5, vocab_size=len(tokenizer), attention="eager")  # eager attention, as load_for_export
    folder = tmp_path_factory.mktemp("onnx")
    export_onnx(model, tokenizer, folder / "model.onnx")
    return model, tokenizer, folder


def test_export_matches_torch_on_every_batch_shape(tiny):
    model, tokenizer, folder = tiny
    runner = OnnxRunner(folder / "model.onnx", tokenizer, device="cpu")
    for batch_size in (1, 3, 16):
        report = parity_report(batched_logits(torch_predictor(model, tokenizer), TEXTS, batch_size),
                               batched_logits(runner.logits, TEXTS, batch_size))
        assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    assert not model.training


def test_parity_gate_refuses_a_broken_export(tiny, tmp_path):
    model, tokenizer, folder = tiny
    graph = onnx.load(str(folder / "model.onnx"))
    classifier = next(t for t in graph.graph.initializer if sorted(t.dims) == [5, 32])
    scrambled = np.random.default_rng(1).normal(size=tuple(classifier.dims)).astype(np.float32)
    classifier.CopyFrom(numpy_helper.from_array(scrambled, classifier.name))
    onnx.save(graph, str(tmp_path / "broken.onnx"))
    reference = batched_logits(torch_predictor(model, tokenizer), TEXTS)
    report = parity_report(reference, batched_logits(OnnxRunner(tmp_path / "broken.onnx", tokenizer).logits, TEXTS))
    with pytest.raises(ParityError, match="agrees with the torch model"):
        require_parity(report, "broken.onnx")


def test_swapped_inputs_are_caught_by_parity(tiny, tmp_path):
    "Feeding token types as the attention mask (the classic export bug) is refused."
    model, tokenizer, folder = tiny
    runner = OnnxRunner(folder / "model.onnx", tokenizer)
    def swapped(texts):
        inputs = runner.encode(texts)
        inputs["attention_mask"], inputs["token_type_ids"] = inputs["token_type_ids"], inputs["attention_mask"]
        return runner.session.run(["logits"], inputs)[0]
    reference = batched_logits(torch_predictor(model, tokenizer), TEXTS)
    with pytest.raises(ParityError):
        require_parity(parity_report(reference, batched_logits(swapped, TEXTS)), "swapped")


@pytest.mark.parametrize("reference, candidate, passes", [(0.93, 0.93, True), (0.93, 0.925, True), (0.93, 0.9249, False),
                                                          (0.93, 0.95, True), (0.5, 0.3, False)])
def test_accuracy_gate(reference, candidate, passes):
    passed, reason = accuracy_gate(reference, candidate, 0.005)
    assert passed == passes and reason.startswith("passes" if passes else "fails")


def test_int8_is_smaller_and_runs_on_cpu(tiny):
    model, tokenizer, folder = tiny
    fused = optimize_graph(folder / "model.onnx", folder / "model.opt.onnx", num_heads=2, hidden_size=32)
    assert fused.get("Attention") == 2 and fused.get("SkipLayerNormalization")
    quantize_int8(folder / "model.opt.onnx", folder / "model.int8.onnx")
    runner = OnnxRunner(folder / "model.int8.onnx", tokenizer, device="auto")
    assert runner.provider == ("CUDAExecutionProvider" if torch.cuda.is_available() else "CPUExecutionProvider")
    assert runner.logits(TEXTS[:4]).shape == (4, 5)
    assert (folder / "model.int8.onnx").stat().st_size < (folder / "model.opt.onnx").stat().st_size


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", None])
def test_corrupt_onnx_file_gives_a_clear_error(tiny, tmp_path, content):
    _, tokenizer, folder = tiny
    path = tmp_path / "model.onnx"
    path.write_bytes(content if content is not None else (folder / "model.onnx").read_bytes()[:5000])  # None: truncated
    with pytest.raises(AinativeError, match="ONNX Runtime cannot load model.onnx"):
        OnnxRunner(path, tokenizer)
