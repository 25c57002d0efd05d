#!/usr/bin/env python
"""Model-only throughput of the pruned student against its L6 teacher, both ONNX INT8, measured in one process.

Run it from the repository root with the project's virtual environment, one heavy job at a time:

    .venv/bin/python benchmarks/bench_student.py --teacher runs/<full-profile run>     # its untrained pruned student
    .venv/bin/python benchmarks/bench_student.py              # no trained teacher: all-MiniLM-L6-v2 with an untrained head
    .venv/bin/python benchmarks/bench_student.py --teacher runs/b77 --student runs/b77-l3 --student runs/b77-ens --plot tradeoff.png --goal-accuracy 0.925

What is measured: the teacher (a trained model folder or run; without one, the real base model all-MiniLM-L6-v2 with
an untrained 77-way head, which costs the same) and `ainative.distill.pruned_student` of it (every second layer; not
trained: a trained student costs the same) are each exported, graph-optimised and quantised to INT8 with the
optimisation stage's own functions (`export_onnx`, `optimize_graph`, `quantize_int8`), then timed with its timer
(`ainative.optimize.measure`) at batch 32, batches grouped by length, on the Banking77 test texts. The two are measured
in alternating rounds, so that load from other processes falls on both alike; the ratio is computed per round and
its median printed with the range. Test accuracy of both is printed too (the student's is before any distillation).
With `--student` (repeatable), trained students (distilled runs, `ainative distill`) are measured instead of the
untrained pruned one, each against the same teacher in the same rounds; `--plot` draws test accuracy against
throughput, one point per model, with a line at twice the teacher's throughput (and at `--goal-accuracy`, if given).

Nothing here asserts a number; it prints the CPU model, the thread settings, a table and the ratio (target: >= 2x),
and writes JSON with `--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ainative.core import cpu_model_name


def cpu_model() -> str:
    "The CPU's model name and the number of cores this process may use."
    return f"{cpu_model_name()} ({len(os.sched_getaffinity(0))} cores available)"


def banking77_split(data_run: str | None, scratch: Path):
    "The test texts and labels and the label map: from `data_run`'s data/ if given, else Banking77 prepared into `scratch`."
    from ainative.data import DataConfig, load_splits, prepare_data, read_manifest
    folder = Path(data_run) / "data" if data_run else scratch / "data-run" / "data"
    if not data_run: prepare_data(DataConfig(dataset="banking77", run_dir=str(scratch / "data-run")))
    test, label2id = load_splits(folder)["test"], read_manifest(folder)["label2id"]
    return test.text.tolist(), test.label.map(label2id).to_numpy(), label2id


def load_teacher(teacher: str | None, label2id: dict[str, int], scratch: Path) -> tuple[Path, bool]:
    "The teacher's model folder and whether it is trained; without `teacher`, the base model with an untrained head, saved in `scratch`."
    from ainative.distill import resolve_model_folder
    from ainative.model import DEFAULT_BASE_MODEL, load_classifier, load_tokenizer
    if teacher: return resolve_model_folder(teacher), True
    folder = scratch / "untrained-l6"
    load_classifier(DEFAULT_BASE_MODEL, label2id).save_pretrained(folder)
    load_tokenizer(DEFAULT_BASE_MODEL).save_pretrained(folder)
    return folder, False


def int8_runner(model, tokenizer, folder: Path, threads: int | None, max_length: int):
    "Export `model` as the optimisation stage does (fp32 export, fused graph, dynamic INT8) into `folder`; its CPU runner."
    from ainative.optimize import OnnxRunner, export_onnx, optimize_graph, quantize_int8
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, tokenizer, folder / "model.fp32.onnx")
    optimize_graph(folder / "model.fp32.onnx", folder / "model.onnx", model.config.num_attention_heads, model.config.hidden_size)
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx")
    return OnnxRunner(folder / "model.int8.onnx", tokenizer, "cpu", threads, max_length)


def student_models(students: list[str] | None, teacher_folder: Path, keep: tuple[int, ...] | None) -> list[tuple[str, object, object, str]]:
    "(name, model, tokenizer, description) of each trained student, or of the teacher's untrained pruned student when there is none."
    from ainative.distill import pruned_student, resolve_model_folder
    from ainative.optimize import load_for_export
    if not students:
        student = pruned_student(teacher_folder, keep)
        _, tokenizer = load_for_export(teacher_folder)
        return [(f"L{student.config.num_hidden_layers} student int8", student, tokenizer,
                 f"student: layers {student.config.pruned_from['keep_layers']} of the teacher, not distilled")]
    found = []
    for path in students:
        folder = resolve_model_folder(path)
        model, tokenizer = load_for_export(folder)
        run = folder.parent.name if folder.name == "model" else folder.name
        found.append((f"L{model.config.num_hidden_layers} {run} int8", model, tokenizer, f"student {run}: {folder}"))
    return found


def plot_tradeoff(throughput: dict[str, float], accuracy: dict[str, float], path: str, title: str,
                  goal_accuracy: float | None = None) -> None:
    "Test accuracy against texts/s, one labelled point per model (the first is the teacher), with the 2x line; saved to `path`."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name in throughput:
        axes.scatter(throughput[name], 100 * accuracy[name], s=40)
        axes.annotate(name, (throughput[name], 100 * accuracy[name]), textcoords="offset points", xytext=(6, 4), fontsize=9)
    teacher = next(iter(throughput))
    axes.axvline(2 * throughput[teacher], color="grey", linestyle="--", linewidth=1, label=f"2x {teacher}")
    if goal_accuracy is not None:
        axes.axhline(100 * goal_accuracy, color="grey", linestyle=":", linewidth=1, label=f"{100 * goal_accuracy:g}% accuracy")
    axes.legend(loc="lower left", fontsize=8)
    axes.set(xlabel="texts/s (model only, tokenisation included)", ylabel="test accuracy (%)", title=title)
    axes.title.set_fontsize(9)
    axes.grid(alpha=0.3)
    axes.margins(x=0.25, y=0.2)  # room for the labels
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", help="trained L6 model folder, run or registry version (default: base model, untrained head)")
    parser.add_argument("--data-run", help="run whose data/ holds the test split (default: the teacher's run if it has data/, "
                                           "else Banking77 prepared in a temporary folder)")
    parser.add_argument("--keep-layers", help="teacher layers the student keeps, e.g. 1,3,5 (default: every second, ending at the last)")
    parser.add_argument("--student", action="append", help="a trained student (model folder, run or registry version) to measure "
                                                           "instead of the untrained pruned one; repeatable")
    parser.add_argument("--plot", help="also draw test accuracy against texts/s into this PNG file")
    parser.add_argument("--goal-accuracy", type=float, help="draw this test accuracy (a fraction, e.g. 0.925) as a line on the plot")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (teacher, student, teacher, ...)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens (default: the training stage's max_length)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args()

    import torch
    from ainative.distill import teacher_run_dir
    from ainative.optimize import batched_logits, load_for_export, measure
    from ainative.training import TrainingConfig
    max_length = args.max_length or TrainingConfig.max_length
    keep = tuple(int(i) for i in args.keep_layers.split(",")) if args.keep_layers else None
    data_run = args.data_run or (teacher_run_dir(args.teacher) if args.teacher else None)
    with tempfile.TemporaryDirectory(prefix="bench-student-") as scratch_name:
        scratch = Path(scratch_name)
        texts, labels, label2id = banking77_split(data_run, scratch)
        teacher_folder, trained = load_teacher(args.teacher, label2id, scratch)
        teacher, tokenizer = load_for_export(teacher_folder)
        students = student_models(args.student, teacher_folder, keep)
        started = time.perf_counter()
        runners = {f"L{teacher.config.num_hidden_layers} int8": int8_runner(teacher, tokenizer, scratch / "teacher", args.threads, max_length)}
        for i, (name, student, student_tokenizer, _) in enumerate(students):
            runners[name] = int8_runner(student, student_tokenizer, scratch / f"student-{i}", args.threads, max_length)
        export_seconds = time.perf_counter() - started
        sizes = {name: runner.path.stat().st_size for name, runner in runners.items()}
        accuracy = {name: float((batched_logits(runner.logits, texts).argmax(-1) == labels).mean()) for name, runner in runners.items()}
        rounds = []
        for round_number in range(args.rounds):
            rounds.append({name: measure(runner.logits, texts, args.batch_size, args.seconds, group_by_length=True, seed=round_number)
                           for name, runner in runners.items()})
    teacher_name, student_names = list(runners)[0], list(runners)[1:]
    ratios = {name: [r[name]["throughput"] / r[teacher_name]["throughput"] for r in rounds] for name in student_names}
    load = os.getloadavg()
    print(f"CPU: {cpu_model()}; threads: torch {torch.get_num_threads()}, onnxruntime {args.threads or 'default (all cores)'}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    described = "; ".join(description for *_, description in students)
    print(f"teacher: {teacher_folder} ({'trained' if trained else 'untrained head: speed only'}); {described}; "
          f"{len(texts)} Banking77 test texts, max_length {max_length}; export {export_seconds:.0f}s")
    print(f"{'variant':<26}{'texts/s (median)':>18}{'p50 ms/batch':>14}{'test acc':>10}{'MB':>8}")
    throughput = {name: statistics.median(r[name]["throughput"] for r in rounds) for name in runners}
    for name in runners:
        p50 = statistics.median(r[name]["p50_ms"] for r in rounds)
        print(f"{name:<26}{throughput[name]:>18.0f}{p50:>14.1f}{accuracy[name]:>10.4f}{sizes[name] / 2**20:>8.1f}")
    for name in student_names:
        print(f"{name} / {teacher_name} throughput at batch {args.batch_size} by length: {statistics.median(ratios[name]):.2f}x "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios[name])}; target >= 2x)")
    if args.plot: plot_tradeoff(throughput, accuracy, args.plot, f"{cpu_model()}, batch {args.batch_size} by length, ONNX INT8", args.goal_accuracy)
    if args.json:
        first = student_names[0]
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "load_average": load, "teacher": str(teacher_folder), "trained": trained,
                                               "students": {name: description for name, _, _, description in students},
                                               "keep_layers": (getattr(students[0][1].config, "pruned_from", None) or {}).get("keep_layers"),
                                               "max_length": max_length, "batch_size": args.batch_size, "accuracy": accuracy, "sizes_bytes": sizes,
                                               "throughput_median": throughput, "rounds": rounds, "ratios": ratios[first],
                                               "ratio_median": statistics.median(ratios[first]),
                                               "ratios_by_student": ratios}, indent=1))


if __name__ == "__main__":
    main()
