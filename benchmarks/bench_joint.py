#!/usr/bin/env python
"""What finding entities costs a server: a joint intent + slots version against its own intent half, same run.

Run it from the repository root with the project's virtual environment, on a quiet machine, after
`ainative pipeline --profile snips` (or any joint run):

    .venv/bin/python benchmarks/bench_joint.py --registry-dir registry --model assistant-snips --run-dir runs/<snips run>

1. copies the served joint version into a temporary registry (its run registered again, its attachments attached);
2. makes its intent-only twin there: the same encoder and intent head (the version loaded as a classifier, as
   calibration and /explain load it), registered as `<model>-intents` and optimised by the optimisation stage;
3. serves both with `ainative serve` on loopback, the same variant (`--variant`, INT8 by default: AINATIVE_VARIANT)
   and settings;
4. runs `wrk` at the same connections on each, alternating (joint, intents, intents, joint, ...) for `--rounds`
   rounds so that drift in the machine's load falls on both alike, with the run's test texts;
5. prints the median requests/s and p99 of each and their ratio, and writes `<out>/bench_joint.json`.

The issue's target: the joint server within 15% of the intent-only one at 16 connections (ratio >= 0.85).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_serve import (ainative_server, copy_registry, load_bodies, machine_facts, run_closed_phase,  # noqa: E402
                         served_version, write_wrk_script)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry-dir", default="registry", help="registry of the joint version; copied, never written (default: %(default)s)")
    parser.add_argument("--model", default="assistant-snips", help="the joint model's name (default: %(default)s)")
    parser.add_argument("--alias", default="production", help="alias of the joint version (default: %(default)s)")
    parser.add_argument("--run-dir", required=True, help="the joint version's run: its data gives the texts, it is registered again")
    parser.add_argument("--variant", default="model.int8.onnx", help="the ONNX file both servers serve (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each phase (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (default: %(default)s)")
    parser.add_argument("--serve-args", default="", help="extra flags for both `ainative serve` processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s (default: %(default)s)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default: %(default)s)")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="longest wait for a server's /ready (default: %(default)s)")
    parser.add_argument("--out", default="runs/bench-joint", help="folder for bench_joint.json and the server logs (default: %(default)s)")
    return parser.parse_args(argv)


def intent_twin(registry_dir: Path, model: str, alias: str, run_dir: Path, destination: Path, twin: str) -> str:
    "Register and optimise, in `destination`, the intent half of the joint version as model `twin`; its version id."
    from ainative.optimize import OptimizationConfig, optimize_model
    from ainative.registry import Registry, RegistryConfig, register_model
    from ainative.tasks import INTENT
    twin_run = destination.parent / "intent-run"
    shutil.copytree(run_dir / "data", twin_run / "data")
    shutil.copy2(run_dir / "params.json", twin_run / "params.json")
    metrics = json.loads((run_dir / "reports" / "metrics.json").read_text())
    (twin_run / "reports").mkdir(parents=True)
    (twin_run / "reports" / "metrics.json").write_text(json.dumps({**metrics, "task": INTENT.name}))
    classifier, tokenizer = Registry(registry_dir).load_model(model, alias)  # the encoder and the intent head
    classifier.config.task, classifier.config.architectures = INTENT.name, [type(classifier).__name__]
    for name in ("tag_labels", "slot_loss_weight", "intent_label_smoothing"):
        if hasattr(classifier.config, name): delattr(classifier.config, name)
    classifier.save_pretrained(twin_run / "model")
    tokenizer.save_pretrained(twin_run / "model")
    register_model(RegistryConfig(run_dir=str(twin_run), registry_dir=str(destination), model_name=twin, promote_to="staging"))
    optimize_model(OptimizationConfig(run_dir=str(twin_run), model_name=twin, bench_seconds=0.2, batch_sizes=(1, 32),
                                      max_int8_drop=1.0))
    return Registry(destination).resolve(twin, "production").name


def server_args(args: argparse.Namespace, model: str) -> argparse.Namespace:
    "The settings `bench_serve.ainative_server` reads, for `model` on the production alias."
    return argparse.Namespace(model=model, alias="production", serve_args=args.serve_args,
                              reload_interval=5.0, ready_timeout=args.ready_timeout)


def summarise(phases: list[dict[str, Any]], name: str) -> dict[str, Any]:
    "Median requests/s and p99 (ms) of `name`'s phases, and every round's."
    mine = [p for p in phases if p["target"] == name]
    return {"rps_median": statistics.median(p["achieved_rps"] for p in mine),
            "p99_ms_median": statistics.median(p["latency_ms"].get("p99") or float("nan") for p in mine),
            "rounds": [{"rps": p["achieved_rps"], "p99_ms": p["latency_ms"].get("p99"), "errors": p["errors"]["total"]} for p in mine]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out, run_dir = Path(args.out), Path(args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    version, manifest = served_version(Path(args.registry_dir), args.model, args.alias)
    if manifest.get("task") != "intent_slots":
        raise SystemExit(f"{args.model} {version} does not find entities (task {manifest.get('task')!r}): name a joint version")
    twin = f"{args.model}-intents"
    os.environ["AINATIVE_VARIANT"] = args.variant  # both servers serve the same file kind (`ServingConfig.variant`)
    with tempfile.TemporaryDirectory() as scratch:
        registry = Path(scratch) / "registry"
        copy_registry(Path(args.registry_dir), args.model, version, "production", run_dir, registry)
        intent_twin(Path(args.registry_dir), args.model, args.alias, run_dir, registry, twin)
        script = write_wrk_script(out, load_bodies(run_dir))
        phases = []
        for name in ("joint", "intents"): (out / name).mkdir(exist_ok=True)  # each server's log in its own folder
        with ainative_server(registry, server_args(args, args.model), out / "joint") as joint, \
             ainative_server(registry, server_args(args, twin), out / "intents") as intents:
            joint.name, intents.name = "joint", "intents"
            for round_number in range(args.rounds):
                order = (joint, intents) if round_number % 2 == 0 else (intents, joint)
                for target in order:
                    phases.append(run_closed_phase(target, script, args.connections, args, out))
                    print(f"round {round_number + 1}: {target.name} {phases[-1]['achieved_rps']} req/s, "
                          f"p99 {phases[-1]['latency_ms'].get('p99')} ms", flush=True)
    report = {"machine": machine_facts(), "model": args.model, "version": version, "variant": args.variant,
              "connections": args.connections, "texts": str(run_dir / "data"),
              "joint": summarise(phases, "joint"), "intents": summarise(phases, "intents"), "phases": phases}
    report["ratio"] = report["joint"]["rps_median"] / report["intents"]["rps_median"]
    (out / "bench_joint.json").write_text(json.dumps(report, indent=1))
    print(f"{args.connections} connections, {args.variant}, medians of {args.rounds} alternating rounds:")
    for name in ("joint", "intents"):
        print(f"  {name:8s} {report[name]['rps_median']:8.1f} req/s   p99 {report[name]['p99_ms_median']:.0f} ms")
    print(f"  joint / intents: {report['ratio']:.2f} (target >= 0.85)")
    return report


if __name__ == "__main__":
    main()
