#!/usr/bin/env python
"""Which INT8 format to ship: accuracy and speed of each dynamic-quantisation format of one model, on this CPU.

Run it from the repository root with the project's virtual environment, on a trained run, one heavy job at a time:

    .venv/bin/python benchmarks/bench_quantization.py --run runs/<full-profile run> --json quantization.json

What is measured: the run's model is exported and graph-optimised as the optimisation stage does (`export_onnx`,
`optimize_graph`), then quantised by `quantize_int8` in every format of `ainative.optimize.INT8_FORMATS` (weights
signed 8-bit, signed 7-bit "reduced range", unsigned 8-bit), per channel and per tensor. Each variant is scored on the
run's test split against ONNX fp32 on the same texts (accuracy, agreement, and the paired decision of the INT8 gate,
`ainative.evidence.judge_not_worse` at a one-point margin) and timed with the stage's timer (`measure`, batches of 32
grouped by length) in alternating rounds, so that load from other processes falls on all variants alike; throughput
is the median over rounds, relative to fp32 in the same rounds. The CPU and its vector units come first: U8S8 products
saturate on x86 CPUs without VNNI, so the same file can be accurate on one host and not on another.

Nothing here asserts a number; it prints a table and writes JSON with `--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from ainative.core import cpu_features, describe_cpu


def variants(folder: Path, model, tokenizer, threads: int | None, max_length: int) -> dict[str, object]:
    "ONNX fp32 (fused) and every INT8 format, per channel and per tensor: name -> CPU runner."
    from ainative.optimize import INT8_FORMATS, OnnxRunner, export_onnx, optimize_graph, quantize_int8
    export_onnx(model, tokenizer, folder / "model.export.onnx")
    optimize_graph(folder / "model.export.onnx", folder / "model.onnx", model.config.num_attention_heads, model.config.hidden_size)
    runners = {"fp32": OnnxRunner(folder / "model.onnx", tokenizer, "cpu", threads, max_length)}
    for int8_format in INT8_FORMATS:
        for per_channel in (True, False):
            name = f"{int8_format} {'per-channel' if per_channel else 'per-tensor'}"
            target = folder / f"model.{int8_format}.{'pc' if per_channel else 'pt'}.onnx"
            quantize_int8(folder / "model.onnx", target, per_channel=per_channel, int8_format=int8_format)
            runners[name] = OnnxRunner(target, tokenizer, "cpu", threads, max_length)
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a trained run (model/ and data/), e.g. the full profile's")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args()

    from ainative.data import load_splits, read_manifest
    from ainative.evidence import judge_not_worse
    from ainative.optimize import batched_logits, load_for_export, measure
    from ainative.training import TrainingConfig
    run = Path(args.run)
    test, label2id = load_splits(run / "data")["test"], read_manifest(run / "data")["label2id"]
    texts, labels = test.text.tolist(), test.label.map(label2id).to_numpy()
    model, tokenizer = load_for_export(run / "model")
    features = cpu_features()
    with tempfile.TemporaryDirectory(prefix="bench-quantization-") as scratch:
        runners = variants(Path(scratch), model, tokenizer, args.threads, TrainingConfig.max_length)
        answers = {name: batched_logits(runner.logits, texts).argmax(-1) for name, runner in runners.items()}
        sizes = {name: runner.path.stat().st_size for name, runner in runners.items()}
        rounds = [{name: measure(runner.logits, texts, 32, args.seconds, group_by_length=True, seed=r)["throughput"]
                   for name, runner in runners.items()} for r in range(args.rounds)]
    correct = {name: predicted == labels for name, predicted in answers.items()}
    results = {}
    for name in runners:
        decision = judge_not_worse(correct["fp32"], correct[name], margin=0.01, evidence="the test set")
        results[name] = {"accuracy": float(correct[name].mean()), "agreement": float((answers[name] == answers["fp32"]).mean()),
                         "verdict": decision.verdict, "interval": decision.interval, "size_bytes": sizes[name],
                         "throughput_median": statistics.median(r[name] for r in rounds),
                         "speedup_median": statistics.median(r[name] / r["fp32"] for r in rounds)}
    load = os.getloadavg()
    print(f"CPU: {describe_cpu(features)}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"model: {run / 'model'}; {len(texts)} test texts; batches of 32 grouped by length, {args.rounds} rounds of {args.seconds:g} s")
    print(f"{'variant':<26}{'test acc':>9}{'agrees':>8}{'gate (1 pt)':>13}{'texts/s':>9}{'x fp32':>8}{'MB':>7}")
    for name, r in results.items():
        print(f"{name:<26}{r['accuracy']:>9.2%}{r['agreement']:>8.2%}{r['verdict']:>13}{r['throughput_median']:>9.0f}"
              f"{r['speedup_median']:>8.2f}{r['size_bytes'] / 2**20:>7.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": features, "load_average": load, "run": str(run), "texts": len(texts),
                                               "rounds": rounds, "results": results}, indent=1, default=list))


if __name__ == "__main__":
    main()
