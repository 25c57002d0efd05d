#!/usr/bin/env python
"""Model-only throughput of both model families, measured in one process: the transformer and the TF-IDF baseline.

Run it from the repository root with the project's virtual environment:

    .venv/bin/python benchmarks/bench_families.py                       # the smoke dataset (about a minute)
    .venv/bin/python benchmarks/bench_families.py --dataset banking77    # another named dataset or file (untrained transformer)
    .venv/bin/python benchmarks/bench_families.py --run-dir runs/<id>    # a trained run: its model, ONNX files, data

What is measured, for each variant, on the test split's texts (random batches, `ainative.optimize.measure`, the
optimisation chapter's timer): p50 latency per batch and throughput at batch 1 and 32, test accuracy, and the size
of what the server loads. Variants:

- transformer `torch fp32`: the model as training leaves it (the reference every speed-up is relative to);
- transformer `onnx fp32`, `onnx int8`: the optimisation stage's exports (from the run's `onnx/`; without a run,
  exported here from the real base model, all-MiniLM-L6-v2, with an untrained head: the same cost as a trained one,
  but its accuracy is chance, so the table prints it as "untrained");
- baseline `onnx`: the TF-IDF + logistic-regression baseline exported with skl2onnx (`ainative.baseline`): the run's
  `baseline/` if it has one, else fitted on the run's train split into a temporary folder. The run is never written.

Nothing here asserts a number; it prints a table, the CPU model and the thread settings, and writes JSON with `--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from ainative.core import cpu_model_name


def cpu_model() -> str:
    "The CPU's model name and the number of cores this process may use."
    return f"{cpu_model_name()} ({len(os.sched_getaffinity(0))} cores available)"


def data_run(folder: Path, dataset: str):
    "A run in `folder` holding the data stage's splits of `dataset` (default: the bundled smoke dataset)."
    from ainative.data import DataConfig, prepare_data
    return prepare_data(DataConfig(run_dir=str(folder / "run"), dataset=dataset)).run


def transformer_variants(run, scratch: Path, threads: int | None, trained: bool) -> dict[str, dict]:
    "name -> {predict, size_bytes} of the run's transformer: torch fp32 and the ONNX variants."
    import torch
    from ainative.data import read_manifest
    from ainative.model import DEFAULT_BASE_MODEL, load_classifier, load_tokenizer
    from ainative.optimize import (OnnxRunner, export_onnx, load_for_export, optimize_graph, quantize_int8,
                                   torch_predictor)
    if threads: torch.set_num_threads(threads)
    max_length = int(run.read_params().get("training", {}).get("max_length", 64)) if run.params_path.is_file() else 64
    if trained:
        model, tokenizer = load_for_export(run.model)
        weights = sum(p.stat().st_size for p in run.model.glob("*.safetensors"))
    else:
        torch.manual_seed(0)
        model = load_classifier(DEFAULT_BASE_MODEL, read_manifest(run.data)["label2id"]).eval()
        tokenizer = load_tokenizer(DEFAULT_BASE_MODEL)
        model.save_pretrained(scratch / "model")
        weights = sum(p.stat().st_size for p in (scratch / "model").glob("*.safetensors"))
    variants = {"torch fp32": {"predict": torch_predictor(model, tokenizer, max_length), "size_bytes": weights}}
    onnx_dir = run.onnx if (run.onnx / "report.json").is_file() else None
    if onnx_dir is None:  # export as the optimisation stage does: fused fp32 graph, dynamic INT8
        onnx_dir = scratch / "onnx"
        export_onnx(model, tokenizer, onnx_dir / "model.fp32.onnx")
        optimize_graph(onnx_dir / "model.fp32.onnx", onnx_dir / "model.onnx", model.config.num_attention_heads, model.config.hidden_size)
        quantize_int8(onnx_dir / "model.onnx", onnx_dir / "model.int8.onnx")
        files = {"onnx fp32": "model.onnx", "onnx int8": "model.int8.onnx"}
    else:
        files = {name: file for name, file in json.loads((onnx_dir / "report.json").read_text())["files"].items() if name != "onnx fp16"}
    for name, file in files.items():
        runner = OnnxRunner(onnx_dir / file, tokenizer, "cpu", threads, max_length)
        variants[name] = {"predict": runner.logits, "size_bytes": (onnx_dir / file).stat().st_size}
    return variants


def baseline_variant(run, scratch: Path, threads: int | None) -> dict:
    "{predict, size_bytes, source} of the run's baseline (its baseline/ folder, else fitted into `scratch`)."
    from ainative.baseline import baseline_session, baseline_text, export_baseline_onnx, fit_baseline, onnx_probabilities
    from ainative.data import load_splits, read_manifest
    path = run.path / "baseline" / "onnx" / "model.onnx"
    source = "the run's baseline/"
    if not path.is_file():
        splits, label2id = load_splits(run.data), read_manifest(run.data)["label2id"]
        started = time.perf_counter()
        classifier = fit_baseline(splits["train"].text.tolist(), splits["train"].label.map(label2id).tolist())
        path = export_baseline_onnx(classifier, scratch / "baseline" / "model.onnx")
        source = f"fitted here on the run's train split in {time.perf_counter() - started:.1f} s"
    session = baseline_session(path, threads)
    return {"predict": lambda texts: onnx_probabilities(session, [baseline_text(t) for t in texts]),
            "size_bytes": path.stat().st_size, "source": source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="a trained run (model/, data/, optionally onnx/ and baseline/); default: the smoke dataset")
    parser.add_argument("--dataset", default="support_intents",
                        help="without --run-dir: the data to measure on (named dataset or file; default: the smoke data)")
    parser.add_argument("--batch-sizes", default="1,32", help="comma-separated batch sizes (default 1,32)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds measured per variant and batch size (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch / ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ainative.core import RunDir
    from ainative.data import load_splits, read_manifest
    from ainative.optimize import batched_logits, measure
    batch_sizes = tuple(int(size) for size in args.batch_sizes.split(","))
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trained = args.run_dir is not None
        run = RunDir(args.run_dir.expanduser().resolve()) if trained else data_run(scratch, args.dataset)
        splits, label2id = load_splits(run.data), read_manifest(run.data)["label2id"]
        texts, truth = splits["test"].text.tolist(), splits["test"].label.map(label2id).to_numpy()
        variants = {("transformer", name): v for name, v in transformer_variants(run, scratch, args.threads, trained).items()}
        variants[("baseline", "onnx")] = baseline_variant(run, scratch, args.threads)
        rows = []
        for (family, name), variant in variants.items():  # one process, one after the other, same texts
            accuracy = float((batched_logits(variant["predict"], texts).argmax(1) == truth).mean())
            measured = {size: measure(variant["predict"], texts, size, args.seconds) for size in batch_sizes}
            rows.append({"family": family, "variant": name, "size_mb": variant["size_bytes"] / 1e6,
                         "test_accuracy": accuracy if (trained or family == "baseline") else None,
                         **{f"p50_ms@{size}": m["p50_ms"] for size, m in measured.items()},
                         **{f"texts_per_s@{size}": m["throughput"] for size, m in measured.items()}})
    reference = next(row for row in rows if row["variant"] == "torch fp32")
    for row in rows:
        for size in batch_sizes:
            row[f"speedup@{size}"] = row[f"texts_per_s@{size}"] / reference[f"texts_per_s@{size}"]
    import torch
    print(f"CPU: {cpu_model()}; threads: torch {torch.get_num_threads()}, onnxruntime {args.threads or 'default (all cores)'}")
    print(f"data: {'run ' + str(run.path) if trained else 'dataset ' + args.dataset + ' (transformer untrained)'}, {len(texts)} test texts; "
          f"baseline: {variants[('baseline', 'onnx')]['source']}; {args.seconds} s per measurement")
    header = ["family", "variant", "size MB", "test acc"] + [f"{k}@{s}" for s in batch_sizes for k in ("p50 ms", "texts/s", "vs torch")]
    print(" | ".join(header))
    for row in rows:
        accuracy = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else "untrained"
        cells = [row["family"], row["variant"], f"{row['size_mb']:.1f}", accuracy]
        cells += [value for s in batch_sizes for value in (f"{row[f'p50_ms@{s}']:.2f}", f"{row[f'texts_per_s@{s}']:.0f}", f"{row[f'speedup@{s}']:.1f}x")]
        print(" | ".join(cells))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "run": str(run.path) if trained else args.dataset, "seconds": args.seconds,
                                         "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
