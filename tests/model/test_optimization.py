"Optimisation gates and runtime on a tiny random BERT: parity, the paired INT8 gate, weight formats, probes, bad files."
import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from ainative.core import AinativeError, ConfigError, ParityError
from ainative.demo import tiny_model, tiny_tokenizer
from ainative.optimize import (INT8_FORMATS, ONNX_OUTPUTS, OnnxRunner, OptimizationConfig, export_onnx, judge_variant,
                               monitoring_reference, optimize_graph, quantize_int8, torch_predictor, unknown_token_rates,
                               write_probes)
from ainative.scoring import batched_logits, parity_report, require_parity

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


def paired(both: int, only_fp32: int, only_variant: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    "Per-text correctness of fp32 and a variant with the given counts."
    fp32 = np.array([True] * (both + only_fp32) + [False] * (only_variant + neither))
    variant = np.array([True] * both + [False] * only_fp32 + [True] * only_variant + [False] * neither)
    return fp32, variant


def test_a_variant_that_loses_one_of_30_test_texts_is_judged_on_validation_and_test_pooled():
    gate = judge_variant(paired(28, 1, 0, 1), paired(55, 0, 0, 5), margin=0.05, undecided="pool")
    assert gate["test"]["verdict"] == "undecided" and gate["test"]["n"] == 30  # 30 texts cannot tell
    assert gate["passed"] and gate["verdict"] == "not worse" and gate["decision"]["n"] == 90
    assert gate["decision"]["evidence"] == "validation and test, pooled" and gate["reason"].startswith("not worse: ")


def test_block_drops_an_undecided_variant():
    gate = judge_variant(paired(28, 1, 0, 1), paired(55, 0, 0, 5), margin=0.05, undecided="block")
    assert not gate["passed"] and gate["verdict"] == "undecided" and gate["decision"]["n"] == 30
    assert gate["reason"].startswith("dropped, int8_undecided=block: undecided: 30 texts cannot tell")


def test_pooled_evidence_that_is_still_undecided_drops_the_variant():
    gate = judge_variant(paired(28, 1, 0, 1), paired(55, 0, 0, 5), margin=0.01)  # one point needs far more than 90 texts
    assert not gate["passed"] and gate["reason"].startswith("dropped, undecided even pooled: undecided: 90 texts")


@pytest.mark.parametrize("table, verdict", [((2826, 12, 8, 234), "not worse"), ((2800, 50, 5, 225), "worse")])
def test_banking77_sized_test_sets_decide_at_one_point(table, verdict):
    gate = judge_variant(paired(*table), paired(0, 0, 0, 0))
    assert gate["verdict"] == gate["test"]["verdict"] == verdict and gate["passed"] == (verdict == "not worse")


def test_a_margin_of_one_accepts_any_loss():
    assert judge_variant(paired(20, 10, 0, 0), paired(0, 0, 0, 0), margin=1.0)["passed"]


def test_int8_gate_settings_are_checked():
    assert OptimizationConfig().max_int8_drop == 0.01 and OptimizationConfig().int8_format == "s8-reduced"
    with pytest.raises(ConfigError, match="no person reviews an INT8 variant"):
        OptimizationConfig(int8_undecided="person")
    for wrong in ({"int8_format": "s4"}, {"max_int8_drop": 1.5}, {"int8_alpha": 0.5}, {"probe_size": -1}):
        with pytest.raises(ConfigError):
            OptimizationConfig.from_params(wrong)


@pytest.mark.parametrize("name", list(INT8_FORMATS))
def test_each_int8_format_stores_its_weights(tiny, tmp_path, name):
    "s8-reduced: signed weights within 7 bits; s8: signed 8 bits; u8: unsigned. Each file runs."
    model, tokenizer, folder = tiny
    optimize_graph(folder / "model.onnx", tmp_path / "model.opt.onnx", num_heads=2, hidden_size=32)
    quantize_int8(tmp_path / "model.opt.onnx", tmp_path / "model.int8.onnx", int8_format=name)
    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    stored = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = [stored[node.input[1]] for node in graph.node if node.op_type in ("MatMulInteger", "QAttention")]
    assert len(weights) == 8 + 2, "every MatMul and both attentions hold integer weights"
    if name == "u8": assert all(w.dtype == np.uint8 for w in weights)
    else: assert all(w.dtype == np.int8 for w in weights)
    widest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert widest <= 64 if name == "s8-reduced" else widest > 64
    assert OnnxRunner(tmp_path / "model.int8.onnx", tokenizer, device="cpu").logits(TEXTS[:3]).shape == (3, 5)


def test_the_probe_set_is_a_seeded_sample_of_known_labels(tmp_path):
    texts = [f"text {i}" for i in range(50)]
    gold = np.array([i % 5 if i % 10 else -1 for i in range(50)])  # every tenth text: a label the model does not know
    logits = {"model.onnx": np.eye(5)[np.maximum(gold, 0)], "model.int8.onnx": np.eye(5)[np.zeros(50, dtype=int)]}
    config = OptimizationConfig(probe_size=20, max_int8_drop=0.02)
    assert write_probes(tmp_path, texts, gold, logits, config) == {"file": "probes.json", "texts": 20}
    probes = json.loads((tmp_path / "probes.json").read_text())
    chosen = [int(text.split()[1]) for text in probes["texts"]]
    assert chosen == sorted(chosen) and all(i % 10 for i in chosen) and probes["labels"] == [i % 5 for i in chosen]
    assert probes["answers"] == {"model.onnx": probes["labels"], "model.int8.onnx": [0] * 20} and probes["reference"] == "model.onnx"
    assert (probes["margin"], probes["alpha"], probes["undecided"], probes["int8_format"]) == (0.02, 0.05, "pool", "s8-reduced")
    write_probes(tmp_path, texts, gold, logits, config)
    assert json.loads((tmp_path / "probes.json").read_text())["texts"] == probes["texts"]  # seeded: the same sample again
    assert write_probes(tmp_path / "none", texts, gold, logits, OptimizationConfig(probe_size=0))["file"] is None


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
