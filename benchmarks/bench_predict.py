#!/usr/bin/env python
"""Batch scoring benchmark: `ainative predict` on a file against the same texts sent to `/predict/batch` of a real
`ainative serve` over HTTP, in the same run; and the peak memory of the predict process.

Run it from the repository root with the project's virtual environment, on a QUIET machine:

    .venv/bin/python benchmarks/bench_predict.py                                   # Banking77's test texts, repeated to 20,000 rows
    .venv/bin/python benchmarks/bench_predict.py --rows 1000000 --skip-server      # the 1,000,000-row file: time and peak memory
    .venv/bin/python benchmarks/bench_predict.py --rows 2000 --registry-dir /tmp/demo/registry   # a smoke run

What it does:

1. writes the input: the Banking77 test texts ($AINATIVE_DATA_DIR/banking77/test.csv, or --texts FILE.csv with a
   `text` column) repeated to --rows rows, as a CSV file with an `id` and a `text` column, in --out;
2. runs `ainative predict` on it (the real command, its own process, with the server's flags: --registry-dir,
   --model, --alias), reads its summary (texts per second of scoring; the model's loading is left out there, and in
   the wall time it is in), and follows its peak resident memory (VmHWM in /proc while it runs);
3. starts `ainative serve` on 127.0.0.1 at a free port, with the request log off (AINATIVE_REQUEST_LOG=false: both
   sides only score, and nothing is written beside the registry), waits for /ready, and sends the same texts in order
   to `/predict/batch`, --request-texts a request, from --concurrency connections, timing from the first request to
   the last answer;
4. compares the labels (the same in the same order: with one connection and requests of whole server batches they
   are identical; with more connections the server's micro-batches mix requests, and INT8's answers move with their
   batch-mates on near ties), prints a table and writes <out>/bench_predict.json.

Both sides use the machine's cores one after the other, never at once. Nothing here asserts a number.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

REPO = Path(__file__).resolve().parent.parent
AINATIVE = str(Path(sys.executable).parent / "ainative")
HOST = "127.0.0.1"


# --- command line ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    "The benchmark's flags."
    parser = argparse.ArgumentParser(description="Batch scoring with `ainative predict` against /predict/batch of "
                                                 "`ainative serve` over HTTP, on the same texts; peak memory of predict.")
    parser.add_argument("--registry-dir", default="registry", help="registry of the version to score with; only read (default: %(default)s)")
    parser.add_argument("--model", default="intent-classifier", help="registered model name (default: %(default)s)")
    parser.add_argument("--alias", default="production", help="alias or version (default: %(default)s)")
    parser.add_argument("--texts", help="CSV file with a `text` column (default: $AINATIVE_DATA_DIR/banking77/test.csv)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the generated input; the texts repeat (default: %(default)s)")
    parser.add_argument("--request-texts", type=int, default=64, help="texts per /predict/batch request, 32 to 64 (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=1, help="connections sending /predict/batch requests (default: %(default)s)")
    parser.add_argument("--predict-args", default="", help="extra flags for `ainative predict`, e.g. \"--batch-size 64\"")
    parser.add_argument("--skip-server", action="store_true", help="measure `ainative predict` only (e.g. with --rows 1000000)")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="longest wait for the server's /ready (default: %(default)s)")
    parser.add_argument("--out", default="runs/bench-predict", help="folder for the input, the output and the report (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.rows < 1 or not 1 <= args.request_texts <= 64 or args.concurrency < 1:
        parser.error("--rows and --concurrency must be at least 1, --request-texts between 1 and 64 (the server's limit)")
    return args


# --- the input ---------------------------------------------------------------------------------------------------
def source_texts(path: str | None) -> tuple[list[str], Path]:
    "The texts to repeat: --texts, else Banking77's test split in $AINATIVE_DATA_DIR."
    if path is None:
        data_dir = os.environ.get("AINATIVE_DATA_DIR")
        if not data_dir: raise SystemExit("set AINATIVE_DATA_DIR (a folder with banking77/test.csv), or name a CSV with --texts")
        path = str(Path(data_dir) / "banking77" / "test.csv")
    with open(path, newline="", encoding="utf-8") as file:
        texts = [row["text"] for row in csv.DictReader(file) if row.get("text", "").strip()]
    if not texts: raise SystemExit(f"no texts in the `text` column of {path}")
    return texts, Path(path)


def write_input(texts: list[str], rows: int, path: Path) -> Path:
    "`rows` rows (`id`, `text`) cycling through `texts`, written as CSV without holding them all."
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text"])
        for start in range(0, rows, 10_000):
            writer.writerows([i, texts[i % len(texts)]] for i in range(start, min(start + 10_000, rows)))
    return path


# --- ainative predict --------------------------------------------------------------------------------------------
def peak_kb(pid: int) -> int | None:
    "The process's peak resident memory so far (VmHWM), in KB; None once it is gone."
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def run_predict(args: argparse.Namespace, input: Path, output: Path) -> dict[str, Any]:
    "Run `ainative predict` on `input`: its summary, wall seconds (with the model's loading) and peak memory."
    command = [AINATIVE, "predict", str(input), "--output", str(output), "--registry-dir", args.registry_dir,
               "--model", args.model, "--alias", args.alias, "--quiet", *args.predict_args.split()]
    started, peak = time.perf_counter(), 0
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    with contextlib.suppress(Exception):
        while process.poll() is None:
            peak = max(peak, peak_kb(process.pid) or 0)
            time.sleep(0.05)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0: raise SystemExit(f"ainative predict failed ({process.returncode}):\n{err[-3000:]}")
    return {"command": " ".join(command[1:]), "wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1024, 1),
            "summary": json.loads(out)}


def predicted_labels(output: Path) -> list[str]:
    "The intent column of predict's CSV output, in order."
    with open(output, newline="", encoding="utf-8") as file:
        return [row["intent"] for row in csv.DictReader(file)]


# --- ainative serve ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(args: argparse.Namespace, log_path: Path) -> Iterator[str]:
    "`ainative serve` on the version, the request log off, ready: its base URL; stopped (SIGTERM) at the end."
    port = free_port()
    command = [AINATIVE, "serve", "--host", HOST, "--port", str(port), "--registry-dir", args.registry_dir,
               "--model", args.model, "--alias", args.alias]
    environment = {**os.environ, "AINATIVE_REQUEST_LOG": "false", "AINATIVE_RELOAD_INTERVAL_S": "0"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=REPO)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + args.ready_timeout
        while True:
            if process.poll() is not None: raise SystemExit(f"the server exited ({process.returncode}); see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200: break
            if time.monotonic() > deadline: raise SystemExit(f"the server was not ready within {args.ready_timeout} s; see {log_path}")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try: process.wait(timeout=40)
        except subprocess.TimeoutExpired: process.kill()


async def post_batches(base: str, texts: list[str], size: int, connections: int) -> tuple[list[str | None], float]:
    "Every text's intent from /predict/batch (requests of `size`, in order, from `connections` workers), and the seconds taken."
    requests = [(start, texts[start:start + size]) for start in range(0, len(texts), size)]
    intents: list[str | None] = [None] * len(texts)
    queue: asyncio.Queue = asyncio.Queue()
    for request in requests: queue.put_nowait(request)
    async def worker(client: httpx.AsyncClient):
        while not queue.empty():
            start, batch = queue.get_nowait()
            answer = await client.post(f"{base}/predict/batch", json={"texts": batch})
            answer.raise_for_status()
            intents[start:start + len(batch)] = [prediction["intent"] for prediction in answer.json()["predictions"]]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await client.post(f"{base}/predict/batch", json={"texts": texts[:size]})  # warm-up, not timed
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        return intents, time.perf_counter() - started


def run_server(args: argparse.Namespace, input: Path, out: Path) -> dict[str, Any]:
    "The input's texts through /predict/batch of a real server: texts per second and the labels."
    with open(input, newline="", encoding="utf-8") as file:
        texts = [row["text"] for row in csv.DictReader(file)]
    with serving(args, out / "serve.log") as base:
        model = httpx.get(f"{base}/model", timeout=5).json()
        intents, seconds = asyncio.run(post_batches(base, texts, args.request_texts, args.concurrency))
    return {"texts": len(texts), "seconds": round(seconds, 2), "texts_per_second": round(len(texts) / seconds, 1),
            "request_texts": args.request_texts, "concurrency": args.concurrency, "version": model.get("version"),
            "variant": model.get("variant"), "intents": intents}


# --- report ------------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    "Where the numbers were taken."
    from ainative.core import cpu_features, describe_cpu
    return {"cpu": describe_cpu(cpu_features()), "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version()}


def table(report: dict[str, Any]) -> str:
    "The results in a few lines."
    predict, server = report["predict"], report.get("server")
    summary = predict["summary"]
    lines = [f"{report['rows']:,} rows of {report['texts_source']} on {report['machine']['cpu']}, load {report['machine']['load_average']}",
             f"ainative predict: {summary['texts_per_second']:,.0f} texts/s scoring ({summary['seconds']:.1f} s), "
             f"{predict['wall_s']:.1f} s wall with the model's loading; peak memory {predict['peak_rss_mb']:,.0f} MB; "
             f"{summary['model']} {summary['model_version']} ({summary['variant']}); {summary['errors']} bad rows"]
    if server:
        lines.append(f"/predict/batch over HTTP: {server['texts_per_second']:,.0f} texts/s ({server['seconds']:.1f} s; "
                     f"{server['request_texts']} texts a request, {server['concurrency']} connection(s))")
        lines.append(f"predict / server: {summary['texts_per_second'] / server['texts_per_second']:.2f}x; "
                     f"same labels: {report['same_labels']:.2%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.registry_dir = str(Path(args.registry_dir).resolve())
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    texts, source = source_texts(args.texts)
    input = write_input(texts, args.rows, out / f"input-{args.rows}.csv")
    report: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "rows": args.rows,
                              "texts_source": str(source), "distinct_texts": len(texts)}
    report["predict"] = run_predict(args, input, out / "scored.csv")
    if not args.skip_server:
        server = run_server(args, input, out)
        labels = predicted_labels(out / "scored.csv")
        report["same_labels"] = sum(a == b for a, b in zip(labels, server["intents"])) / len(labels)
        report["server"] = {key: value for key, value in server.items() if key != "intents"}
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "bench_predict.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"report: {out / 'bench_predict.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
