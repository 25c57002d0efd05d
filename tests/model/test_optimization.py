"Optimisation gates and runtime on a tiny random BERT: parity, accuracy, providers, bad files, registry attach."
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from ainative.core import AinativeError, ParityError
from ainative.demo import tiny_model, tiny_tokenizer
from ainative.optimize import (ONNX_OUTPUTS, OnnxRunner, accuracy_gate, batched_logits, export_onnx, monitoring_reference,
                               optimize_graph, parity_report, quantize_int8, require_parity, torch_predictor,
                               unknown_token_rates)

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


def _mean_pooled(model, tokenizer, texts):
    "The sentence embeddings computed in torch: the last hidden layer averaged over the real tokens, one text at a time."
    with torch.no_grad():
        return np.vstack([model(**tokenizer([text], return_tensors="pt"), output_hidden_states=True).hidden_states[-1]
                          .mean(dim=1).numpy() for text in texts])


def test_every_variant_exports_the_sentence_embedding_with_the_logits(tiny, tmp_path):
    "The second output is the mean-pooled last layer, padding excluded, in the fused fp32 graph and (close) in INT8."
    model, tokenizer, folder = tiny
    expected = _mean_pooled(model, tokenizer, TEXTS[:12])
    optimize_graph(folder / "model.onnx", tmp_path / "model.opt.onnx", num_heads=2, hidden_size=32)
    quantize_int8(tmp_path / "model.opt.onnx", tmp_path / "model.int8.onnx")
    for path, tolerance in ((folder / "model.onnx", 1e-4), (tmp_path / "model.opt.onnx", 1e-4), (tmp_path / "model.int8.onnx", 0.1)):
        runner = OnnxRunner(path, tokenizer, device="cpu")
        assert [output.name for output in runner.session.get_outputs()] == list(ONNX_OUTPUTS)
        computed = batched_logits(runner.embeddings, TEXTS[:12], batch_size=5)  # padded batches: padding must not count
        assert computed.shape == (12, 32) and np.abs(computed - expected).max() < tolerance, path.name


def test_the_monitoring_reference_is_saved_beside_the_graphs(tiny, tmp_path):
    model, tokenizer, folder = tiny
    runner = OnnxRunner(folder / "model.onnx", tokenizer, device="cpu")
    measured = monitoring_reference({"model.onnx": runner}, tokenizer, TEXTS + ["\U0001F600 refund"], tmp_path, sample_size=40)
    sample = np.load(tmp_path / measured["embeddings"]["model.onnx"], allow_pickle=False)
    assert sample.shape == (40, 32) and sample.dtype == np.float16
    rates = unknown_token_rates(tokenizer, TEXTS + ["\U0001F600 refund"])
    assert rates[:-1].max() == 0 and 0 < rates[-1] < 1  # only the emoji is unknown
    assert measured["unknown_token_rate"] == {"mean": pytest.approx(rates[-1] / 101), "any": pytest.approx(1 / 101), "texts": 101}
    assert list(unknown_token_rates(tokenizer, ["refund", "\U0001F600", ""])) == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", None])
def test_corrupt_onnx_file_gives_a_clear_error(tiny, tmp_path, content):
    _, tokenizer, folder = tiny
    path = tmp_path / "model.onnx"
    path.write_bytes(content if content is not None else (folder / "model.onnx").read_bytes()[:5000])  # None: truncated
    with pytest.raises(AinativeError, match="ONNX Runtime cannot load model.onnx"):
        OnnxRunner(path, tokenizer)
