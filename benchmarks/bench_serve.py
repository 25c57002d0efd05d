#!/usr/bin/env python
"""Load benchmark of `ainative serve` against two torch baselines, with a hot reload under load.

Run it from the repository root with the project's virtual environment, on a QUIET machine (the load generator
and the server share its cores):

    .venv/bin/python benchmarks/bench_serve.py                                   # the full measurement
    .venv/bin/python benchmarks/bench_serve.py --duration 2 --warmup 1 --rates 50 --concurrency 8   # a smoke run
    .venv/bin/python benchmarks/bench_serve.py --skip-baselines --skip-reload                      # request logging on vs off
    .venv/bin/python benchmarks/bench_serve.py --skip-baselines --skip-reload --skip-logging-compare --shadow-compare  # shadow on vs off

A version of the baseline family (chapter 16; `ainative pipeline -p family=best`) is measured the same way: name its
model and alias (and its run with --run-dir); the copy and the hot reload register the run's baseline again.

What it does (see benchmarks/README.md for how to read the results):

1. copies the served version into a temporary registry through the Registry API (the run registered again, each
   attachment attached again, every file checked against the served version's sha256; the real registry is never
   written), starts
   the real server (`ainative serve`) on 127.0.0.1 at a free port, and times process start -> /ready;
2. OPEN loop: an asyncio HTTP/1.1 keep-alive generator sends /predict requests at each fixed rate, on schedule
   whatever the responses do, and measures latency from each request's scheduled send time (no coordinated
   omission); in-flight requests are capped and a request that would exceed the cap counts as an error;
3. CLOSED loop: `wrk` at each fixed concurrency, with a Lua script cycling through the Banking77 test texts;
4. HOT RELOAD: registers the run again in the copy, and promotes it while an open-loop phase runs;
5. REQUEST LOGGING: a second `ainative serve` with the request log off (AINATIVE_REQUEST_LOG=false; the first one
   runs with it on), on its own registry copy, runs beside the first; every open- and closed-loop load is measured
   on both, alternating (on, off, off, on, on, off ... `--logging-repeats` rounds), so that drift in the machine's
   load (other processes, thermal limits, caches) falls on both sides alike; the report gives the median on/off
   ratio and its spread over the rounds;
   With `--shadow-compare`, a third `ainative serve` runs on its own copy holding the version twice, the second copy on
   the `challenger` alias, with `--challenger challenger --shadow-share S`: the challenger scores a share S of the
   requests off the request path. It joins the same alternation, and the report gives shadow on / off (the plain
   log-on server) ratios the same way: what the shadow costs the champion's throughput and latency;
6. the same closed-loop phases against two baselines (torch per request padded to max_length; a transformers
   pipeline per request), each its own uvicorn app;
7. prints a table and writes `<out>/bench_serve.json` (and `<out>/bench_serve.png` when matplotlib is there).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # every process of the benchmark listens and connects on loopback only
VERSION_PATTERN = re.compile(rb'"model_version"\s*:\s*"([^"]+)"')
clock = time.perf_counter  # every open-loop timestamp (uvloop's loop.time() has only millisecond resolution)


# --- command line ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    "The benchmark's flags; the defaults are the full measurement."
    def numbers(kind):
        return lambda text: [kind(part) for part in text.split(",") if part.strip()]
    parser = argparse.ArgumentParser(description="Load benchmark of `ainative serve` (open and closed loop), two torch "
                                                 "baselines and a hot reload under load. Run it on a quiet machine.")
    parser.add_argument("--registry-dir", default="registry", help="registry to serve from; it is copied, never written (default: %(default)s)")
    parser.add_argument("--model", default="intent-classifier", help="registered model name (default: %(default)s)")
    parser.add_argument("--alias", default="production", help="alias served and promoted in the reload phase (default: %(default)s)")
    parser.add_argument("--run-dir", help="run whose data/ gives the test texts and which is registered again for the "
                                          "reload phase (default: the run recorded in the served version's manifest)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase (default: %(default)s)")
    parser.add_argument("--rates", type=numbers(float), default=[250.0, 500.0, 750.0], help="open-loop rates, req/s (default: 250,500,750)")
    parser.add_argument("--concurrency", type=numbers(int), default=[16, 64], help="closed-loop connections for wrk (default: 16,64)")
    parser.add_argument("--reload-rate", type=float, default=300.0, help="open-loop rate of the hot-reload phase (default: %(default)s)")
    parser.add_argument("--serve-args", default="", help="extra flags for `ainative serve`, e.g. \"--threads 1 --max-wait-ms 5\" "
                                                         "(default: none, the server's defaults)")
    parser.add_argument("--reload-interval", type=float, default=0.5, help="AINATIVE_RELOAD_INTERVAL_S of the server (default: %(default)s)")
    parser.add_argument("--reload-timeout", type=float, default=60.0, help="longest the reload phase waits for the new version (default: %(default)s)")
    parser.add_argument("--max-in-flight", type=int, default=512, help="open-loop cap on requests in flight; beyond it a request counts as an overflow error (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds, open loop and wrk (default: %(default)s)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (at most the connections; default: %(default)s)")
    parser.add_argument("--baseline-max-length", type=int, default=128, help="baseline (a) pads every text to this many tokens (default: %(default)s)")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="longest wait for a server's /ready (default: %(default)s)")
    parser.add_argument("--skip-baselines", action="store_true", help="do not run the two torch baselines")
    parser.add_argument("--skip-reload", action="store_true", help="do not run the hot-reload phase")
    parser.add_argument("--skip-closed", action="store_true", help="do not run the closed-loop (wrk) phases, nor the baselines "
                                                                   "(they are closed loop only); wrk is then not needed")
    parser.add_argument("--skip-logging-compare", action="store_true", help="do not repeat the phases against a server with "
                                                                            "the request log off (AINATIVE_REQUEST_LOG=false)")
    parser.add_argument("--logging-repeats", type=int, default=3, help="rounds of the request-log on/off comparison at each "
                                                                       "load, alternating which server goes first (default: %(default)s)")
    parser.add_argument("--shadow-compare", action="store_true", help="also measure a server with a challenger shadowing "
                                                                      "--shadow-share of the requests, alternated with the plain one")
    parser.add_argument("--shadow-share", type=float, default=1.0, help="share of requests the shadow scores (default: %(default)s, "
                                                                         "the cost at its highest)")
    parser.add_argument("--model-only-seconds", type=float, default=5.0, help="seconds of each model-only measurement of the "
                                                                                "served variant, before each load and at the end (default: %(default)s; 0: skip)")
    parser.add_argument("--no-plot", action="store_true", help="do not write bench_serve.png")
    parser.add_argument("--out", default="runs/bench-serve", help="folder for bench_serve.json, the plot and the server logs (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or not args.rates or not args.concurrency or min(args.rates) <= 0 or min(args.concurrency) < 1:
        parser.error("--duration must be > 0, --warmup >= 0, and --rates / --concurrency non-empty and positive")
    reserved = {"--host", "--port", "--registry-dir", "--model", "--alias"}
    if reserved & {flag.split("=", 1)[0] for flag in shlex.split(args.serve_args)}:
        parser.error(f"--serve-args may not set {sorted(reserved)}: the benchmark sets them")
    if not 0 < args.shadow_share <= 1: parser.error("--shadow-share must lie in (0, 1]")
    if args.max_in_flight < 1 or args.timeout <= 0 or args.reload_rate <= 0 or args.logging_repeats < 1:
        parser.error("--max-in-flight, --timeout, --reload-rate and --logging-repeats must be positive")
    return args


# --- texts and the registry copy ---------------------------------------------------------------------------------
def served_version(registry_dir: Path, model: str, alias: str) -> tuple[str, dict[str, Any]]:
    "The version id behind `alias` and its manifest."
    from ainative.registry import Registry
    registry = Registry(registry_dir)
    folder = registry.resolve(model, alias)
    return folder.name, registry.show(model, folder.name)


def load_bodies(run_dir: Path) -> list[bytes]:
    "The Banking77 test texts of `run_dir` as JSON /predict bodies (json.dumps escapes quotes, newlines, non-ASCII)."
    from ainative.data import load_splits
    texts = [str(text) for text in load_splits(run_dir / "data")["test"].text]
    if not texts: raise SystemExit(f"no test texts in {run_dir / 'data'}")
    return [json.dumps({"text": text}).encode() for text in texts]


def version_hashes(registry, model: str, version: str) -> dict[str, str]:
    "sha256 of every file of a version: its manifest's files and each attachment's, as `<kind>/<path>`."
    hashes = {path: entry["sha256"] for path, entry in registry.show(model, version)["files"].items()}
    for kind, record in registry.attachments(model, version).items():
        hashes.update({f"{kind}/{path}": entry["sha256"] for path, entry in record.get("files", {}).items()})
    return hashes


def register_run(registry, run_dir: Path, model: str, family: str) -> str:
    "Register `run_dir` in `registry` as a version of `family` (chapter 2d): the run's transformer, or its exported baseline (chapter 16)."
    return registry.register(run_dir, name=model, family=family)


def copy_registry(registry_dir: Path, model: str, version: str, alias: str, run_dir: Path, destination: Path) -> tuple[Path, str]:
    "A registry at `destination` holding `version` again (its run registered, its attachments attached, `alias` promoted); its id there."
    from ainative.registry import ATTACHMENT_FILES, Registry
    source, copy = Registry(registry_dir), Registry(destination)
    folder = source.resolve(model, version)
    copied = register_run(copy, run_dir, model, source.version_family(model, folder.name).name)
    for kind, record in source.attachments(model, version).items():
        if (copy.resolve(model, copied) / kind).exists(): continue  # the ONNX files came with the run
        with tempfile.TemporaryDirectory() as staging:
            files = shutil.copytree(folder / kind, Path(staging) / kind, ignore=shutil.ignore_patterns(*ATTACHMENT_FILES))
            copy.attach(model, copied, kind, files, info=record.get("info"))
    expected, found = version_hashes(source, model, version), version_hashes(copy, model, copied)
    served = {path for path in expected.keys() & found.keys() if "/" in path}  # the top-level card names its version: it differs
    differ = sorted(path for path in served if expected[path] != found[path])
    missing = sorted(path for path in expected if path.startswith(("model/", "onnx/")) and path not in found)
    if differ or missing:
        raise SystemExit(f"{run_dir} no longer holds what {model} {version} was registered from: {(differ + missing)[:3]} differ "
                         "or are missing; pass --run-dir with the run of that version")
    copy.promote(model, copied, alias, reason=f"bench_serve: copy of {version}")  # verifies the copy's sha256 sums
    return destination, copied


# --- processes ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    "A TCP port on 127.0.0.1 that is free now."
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    "In the child, before exec: ask Linux to SIGTERM it if the benchmark dies without cleaning up."
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen, grace: float = 15.0) -> None:
    "SIGTERM `process` (servers drain their queue), then SIGKILL it if it is still there after `grace` seconds."
    if process.poll() is not None: return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(5)


@contextlib.contextmanager
def running(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    "Run `command` (output to `log_path`) for the duration of the block; it is always stopped on the way out."
    log = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                               env=env, start_new_session=True, preexec_fn=_die_with_parent)
    try:
        yield process
    finally:
        stop_process(process)
        log.close()


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    "Status and body of GET `url` (status 0 when nothing answers): probes and /metrics, outside every measurement."
    try:
        response = httpx.get(url, timeout=timeout)
        return response.status_code, response.content
    except httpx.HTTPError:
        return 0, b""


def wait_ready(base_url: str, process: subprocess.Popen, started: float, timeout: float, log_path: Path) -> dict[str, float]:
    "Poll /health and /ready until /ready answers 200; seconds from `started` (process start) to each."
    times: dict[str, float] = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"server exited with {process.returncode} before it was ready; log {log_path}:\n{tail}")
        for path in ("/health", "/ready"):
            if path not in times and http_get(base_url + path, timeout=1.0)[0] == 200:
                times[path] = time.monotonic() - started
        if "/ready" in times:
            return {"health_s": round(times.get("/health", times["/ready"]), 3), "ready_s": round(times["/ready"], 3)}
        time.sleep(0.025)
    raise SystemExit(f"{base_url} not ready after {timeout:.0f} s; log {log_path}")


@dataclass
class Target:
    "A server under test: its name, base URL, process and whether it has ainative's /metrics."
    name: str
    base_url: str
    process: subprocess.Popen
    readiness: dict[str, float]
    has_metrics: bool = False
    registry_dir: Path | None = None  # ainative's: the registry copy it serves (the model-only measurement opens it too)

    @property
    def port(self) -> int: return int(self.base_url.rsplit(":", 1)[1])


def ainative_command() -> str:
    "The `ainative` console script of this environment."
    beside = Path(sys.executable).parent / "ainative"
    found = str(beside) if beside.is_file() else shutil.which("ainative")
    if not found: raise SystemExit("`ainative` is not installed in this environment (pip install -e .)")
    return found


LOG_OFF = "ainative log-off"  # the target name of the server with the request log off
SHADOW_ON = "ainative shadow"  # the target name of the server with a challenger shadowing the traffic


@contextlib.contextmanager
def ainative_server(registry_dir: Path, args: argparse.Namespace, out: Path, request_log: bool = True,
                    shadow: bool = False) -> Iterator[Target]:
    """`ainative serve` on a free loopback port with its default settings (reload interval from the flags), ready; request log
    on or off; with `shadow`, the `challenger` alias shadows `--shadow-share` of the requests."""
    port = free_port()
    command = [ainative_command(), "serve", "--registry-dir", str(registry_dir), "--model", args.model, "--alias", args.alias,
               "--host", HOST, "--port", str(port), "--log-level", "warning", *shlex.split(args.serve_args)]
    if shadow: command += ["--challenger", "challenger", "--challenger-mode", "shadow", "--shadow-share", str(args.shadow_share)]
    env = {**os.environ, "AINATIVE_RELOAD_INTERVAL_S": str(args.reload_interval), "HF_HUB_OFFLINE": "1",
           "AINATIVE_REQUEST_LOG": "true" if request_log else "false"}  # explicit both ways: the outer environment never decides
    name, log = ("ainative", out / "server.log") if request_log else (LOG_OFF, out / "server-log-off.log")
    if shadow: name, log = SHADOW_ON, out / "server-shadow.log"
    started = time.monotonic()
    with running(command, log, env) as process:
        base_url = f"http://{HOST}:{port}"
        yield Target(name, base_url, process, wait_ready(base_url, process, started, args.ready_timeout, log), has_metrics=True,
                     registry_dir=registry_dir)


@contextlib.contextmanager
def baseline_server(module: str, model_dir: Path, version: str, args: argparse.Namespace, out: Path) -> Iterator[Target]:
    "A baseline app of benchmarks/ under uvicorn (uvloop, httptools, no access log, like `ainative serve`), ready."
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", f"benchmarks.{module}:create_app", "--app-dir", str(REPO),
               "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
               "--loop", "uvloop", "--http", "httptools"]
    env = {**os.environ, "BENCH_MODEL_DIR": str(model_dir), "BENCH_MODEL_VERSION": version,
           "BENCH_MAX_LENGTH": str(args.baseline_max_length), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    started = time.monotonic()
    with running(command, out / f"{module}.log", env) as process:
        base_url = f"http://{HOST}:{port}"
        yield Target(module, base_url, process, wait_ready(base_url, process, started, args.ready_timeout, out / f"{module}.log"))


# --- measurements shared by both loops ---------------------------------------------------------------------------
def cpu_seconds(process: psutil.Process) -> float:
    "User + system CPU seconds used so far by `process` (all its threads)."
    times = process.cpu_times()
    return times.user + times.system


def children_cpu_seconds() -> float:
    "User + system CPU seconds of this process's children that have exited and been waited for (e.g. wrk)."
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def request_log_rows(metrics_text: str) -> dict[str, int] | None:
    "ainative_request_log_rows_total by outcome (written, dropped) from a Prometheus exposition; None without a request log."
    found = re.findall(r'^ainative_request_log_rows_total\{outcome="(\w+)"\} ([0-9.e+]+)$', metrics_text, re.M)
    return {outcome: int(float(value)) for outcome, value in found} or None


def batch_counters(metrics_text: str) -> tuple[float, float] | None:
    "(sum, count) of ainative_batch_size from a Prometheus exposition, None when absent."
    values = {}
    for line in metrics_text.splitlines():
        for name in ("ainative_batch_size_sum", "ainative_batch_size_count"):
            if line.startswith(name + " "): values[name] = float(line.split()[1])
    if len(values) < 2: return None
    return values["ainative_batch_size_sum"], values["ainative_batch_size_count"]


def mean_batch(before: tuple[float, float] | None, after: tuple[float, float] | None) -> dict[str, Any] | None:
    "Mean texts per model call, and the number of calls, between two readings of the batch-size counters."
    if before is None or after is None: return None
    calls = after[1] - before[1]
    return {"mean": round((after[0] - before[0]) / calls, 2) if calls else None, "model_calls": int(calls)}


def percentiles_ms(seconds: list[float] | np.ndarray) -> dict[str, float | None]:
    "p50/p90/p95/p99/p99.9, mean and max of latencies given in seconds, in milliseconds."
    if len(seconds) == 0: return {key: None for key in ("p50", "p90", "p95", "p99", "p999", "mean", "max")}
    values = np.asarray(seconds) * 1000
    p50, p90, p95, p99, p999 = np.percentile(values, [50, 90, 95, 99, 99.9])
    return {"p50": round(float(p50), 2), "p90": round(float(p90), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2),
            "p999": round(float(p999), 2), "mean": round(float(values.mean()), 2), "max": round(float(values.max()), 2)}


# --- open loop: asyncio HTTP/1.1 keep-alive generator ------------------------------------------------------------
class Connection:
    "One keep-alive HTTP/1.1 connection: send a ready-made request, read one response."
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        "Connect to `host`:`port` (Nagle off, as wrk does)."
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        "Send `request`; return the response's status, body and whether the connection can be reused."
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._read_chunked()
        else:  # no length: the body runs to the end of the connection
            return status, await self.reader.read(), False
        return status, body, headers.get("connection") != "close"

    async def _read_chunked(self) -> bytes:
        "A chunked body (bounded number of chunks)."
        chunks = []
        for _ in range(100_000):  # bounded
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        raise ValueError("too many chunks")

    def close(self) -> None:
        "Close the connection, ignoring errors."
        with contextlib.suppress(Exception):
            self.writer.close()


class ConnectionPool:
    "Idle keep-alive connections to one server; a connection is opened when none is idle."
    def __init__(self, host: str, port: int):
        self.host, self.port, self.idle, self.opened = host, port, [], 0

    async def get(self) -> Connection:
        "An idle connection, or a new one."
        if self.idle: return self.idle.pop()
        self.opened += 1
        return await Connection.open(self.host, self.port)

    def put(self, connection: Connection) -> None:
        "Give back a connection that can take another request."
        self.idle.append(connection)

    def close(self) -> None:
        "Close every idle connection."
        while self.idle: self.idle.pop().close()


async def get_async(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    "GET `path` on a connection of its own (status 0 on failure)."
    connection = None
    try:
        async with asyncio.timeout(timeout):
            connection = await Connection.open(host, port)
            status, body, _ = await connection.exchange(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            return status, body
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return 0, b""
    finally:
        if connection: connection.close()


@dataclass
class Outcome:
    "One open-loop request: times (`clock`, seconds), its result and the model version that answered."
    scheduled: float
    measured: bool
    sent: float | None = None
    done: float | None = None
    result: str = "pending"  # an HTTP status ("200", "503" …), "timeout", "connection" or "overflow"
    version: str | None = None


def post_requests(bodies: list[bytes], host: str, port: int) -> list[bytes]:
    "Complete HTTP/1.1 POST /predict requests (keep-alive), one per body."
    return [f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies]


async def _send(pool: ConnectionPool, request: bytes, outcome: Outcome, timeout: float) -> None:
    "Send one request and fill in `outcome`; connection errors and timeouts are results, never exceptions."
    connection = None
    try:
        async with asyncio.timeout(timeout):
            connection = await pool.get()
            outcome.sent = clock()
            status, body, reusable = await connection.exchange(request)
        outcome.result = str(status)
        found = VERSION_PATTERN.search(body)
        outcome.version = found.group(1).decode() if found else None
        if reusable: pool.put(connection)
        else: connection.close()
    except TimeoutError:
        outcome.result = "timeout"
        if connection: connection.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
        outcome.result = "connection"
        if connection: connection.close()
    finally:
        outcome.done = clock()


@dataclass
class OpenLoopRun:
    "Everything an open-loop phase recorded."
    rate: float
    outcomes: list[Outcome]
    measure_start: float
    measure_end: float  # when the last measured request finished (or was given up)
    server_cpu_s: float | None
    generator_cpu_s: float
    batches: dict[str, Any] | None
    connections_opened: int


async def open_loop(target: Target, bodies: list[bytes], rate: float, duration: float, warmup: float,
                    max_in_flight: int, timeout: float, keep_going: Callable[[], bool] | None = None,
                    max_extra: float = 0.0, at: dict[float, Callable[[], Any]] | None = None,
                    outcomes: list[Outcome] | None = None) -> OpenLoopRun:
    """Send requests at `rate`/s for `warmup` + `duration` seconds on schedule, whatever the responses do.

    Request i is due at start + i/rate; every due request is sent at once (so a late wake-up sends a burst rather
    than dropping requests), and its latency counts from its due time. With more than `max_in_flight` requests
    outstanding a due request is not sent and counts as an `overflow` error. After `duration`, sending goes on in
    steps of 0.5 s while `keep_going()` is true, at most `max_extra` seconds more. `at` maps seconds after the
    measured window opens to callbacks (coroutine functions run as tasks). Outcomes are appended to `outcomes`
    (a new list by default) as requests are scheduled, so a caller's `keep_going` can look at them."""
    loop = asyncio.get_running_loop()
    pool = ConnectionPool(HOST, target.port)
    requests = post_requests(bodies, HOST, target.port)
    server, generator = psutil.Process(target.process.pid), psutil.Process()
    outcomes = [] if outcomes is None else outcomes
    tasks: set[asyncio.Task] = set()
    in_flight = 0
    pending_calls = sorted((at or {}).items())
    background: list[asyncio.Task] = []

    def finished(task: asyncio.Task) -> None:
        "A request is over: one fewer in flight."
        nonlocal in_flight
        in_flight -= 1
        tasks.discard(task)

    start = clock() + 0.05
    n_warmup = int(round(warmup * rate))
    n_planned = n_warmup + max(1, int(round(duration * rate)))
    hard_stop = n_planned + int(round(max_extra * rate))
    measure_start = start + n_warmup / rate
    snapshot: dict[str, Any] = {}
    index = 0
    try:
        while True:
            now = clock()
            while index < n_planned and start + index / rate <= now:
                scheduled = start + index / rate
                if index == n_warmup:  # the measured window opens
                    snapshot.update(server=cpu_seconds(server), generator=cpu_seconds(generator))
                    if target.has_metrics: snapshot["metrics"] = loop.create_task(get_async(HOST, target.port, "/metrics"))
                outcome = Outcome(scheduled, measured=index >= n_warmup)
                outcomes.append(outcome)
                if in_flight >= max_in_flight:
                    outcome.result, outcome.done = "overflow", now
                else:
                    in_flight += 1
                    task = loop.create_task(_send(pool, requests[index % len(requests)], outcome, timeout))
                    tasks.add(task)
                    task.add_done_callback(finished)
                index += 1
            while pending_calls and index > n_warmup and now >= measure_start + pending_calls[0][0]:
                result = pending_calls.pop(0)[1]()
                if asyncio.iscoroutine(result): background.append(loop.create_task(result))
            if index >= n_planned:
                if keep_going is not None and n_planned < hard_stop and keep_going():
                    n_planned = min(hard_stop, n_planned + max(1, int(round(0.5 * rate))))
                else:
                    break
            await asyncio.sleep(max(0.0, start + index / rate - clock()))
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout + 2)
        for task in list(tasks): task.cancel()  # _send has its own timeout, so this is a last resort
        if background: await asyncio.wait(background, timeout=timeout + 30)
        measure_end = max([o.done for o in outcomes if o.measured and o.done is not None], default=clock())
        server_cpu = cpu_seconds(server) - snapshot["server"] if "server" in snapshot else None
        generator_cpu = cpu_seconds(generator) - snapshot.get("generator", cpu_seconds(generator))
        batches = None
        if "metrics" in snapshot:
            before = batch_counters((await snapshot["metrics"])[1].decode(errors="replace"))
            batches = mean_batch(before, batch_counters((await get_async(HOST, target.port, "/metrics"))[1].decode(errors="replace")))
    finally:
        for task in list(tasks) + background: task.cancel()
        pool.close()
    for outcome in outcomes:
        if outcome.result == "pending": outcome.result = "timeout"
    return OpenLoopRun(rate, outcomes, measure_start, measure_end, server_cpu, generator_cpu, batches, pool.opened)


def error_kinds(results: list[str]) -> dict[str, Any]:
    "Errors by kind: non-2xx responses by status, timeouts, connection errors, client overflows."
    non_2xx: dict[str, int] = {}
    for result in results:
        if result.isdigit() and not result.startswith("2"): non_2xx[result] = non_2xx.get(result, 0) + 1
    counts = {"non_2xx": sum(non_2xx.values()), "non_2xx_by_status": non_2xx,
              "timeout": results.count("timeout"), "connection": results.count("connection"), "overflow": results.count("overflow")}
    counts["total"] = counts["non_2xx"] + counts["timeout"] + counts["connection"] + counts["overflow"]
    return counts


def timeline(outcomes: list[Outcome], origin: float, bin_s: float = 0.5) -> list[dict[str, Any]]:
    "Measured requests in bins of `bin_s` seconds by due time since `origin`: count, errors, p50/p99 (ms), versions."
    bins: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.measured: bins.setdefault(int((outcome.scheduled - origin) // bin_s), []).append(outcome)
    rows = []
    for index in sorted(bins):
        group = bins[index]
        ok = [o.done - o.scheduled for o in group if o.result.startswith("2")]
        latency = percentiles_ms(ok)
        versions: dict[str, int] = {}
        for o in group:
            if o.version: versions[o.version] = versions.get(o.version, 0) + 1
        rows.append({"t_s": round(index * bin_s, 2), "sent": len(group), "ok": len(ok), "errors": len(group) - len(ok),
                     "p50_ms": latency["p50"], "p99_ms": latency["p99"], "versions": versions})
    return rows


def summarise_open_loop(run: OpenLoopRun, name: str) -> dict[str, Any]:
    "The phase's numbers: offered and achieved rate, latency from the scheduled time, errors, CPU, batch size."
    measured = [o for o in run.outcomes if o.measured]
    ok = [o for o in measured if o.result.startswith("2")]
    window = max(run.measure_end - run.measure_start, 1e-9)
    offered_span = (measured[-1].scheduled - measured[0].scheduled + 1 / run.rate) if measured else 1.0
    lags = [o.sent - o.scheduled for o in measured if o.sent is not None]
    versions: dict[str, int] = {}
    for o in ok: versions[o.version or "?"] = versions.get(o.version or "?", 0) + 1
    return {"phase": name, "kind": "open", "target_rate": run.rate, "sent": len(measured),
            "offered_rps": round(len(measured) / offered_span, 1), "achieved_rps": round(len(ok) / window, 1),
            "window_s": round(window, 3), "latency_ms": percentiles_ms([o.done - o.scheduled for o in ok]),
            "errors": error_kinds([o.result for o in measured]),
            "server_cpu_percent": round(100 * run.server_cpu_s / window, 1) if run.server_cpu_s is not None else None,
            "generator_cpu_percent": round(100 * run.generator_cpu_s / window, 1), "batch_size": run.batches,
            "send_lag_ms": percentiles_ms(lags), "connections_opened": run.connections_opened, "versions": versions}


def run_open_phase(target: Target, bodies: list[bytes], rate: float, args: argparse.Namespace) -> dict[str, Any]:
    "One open-loop phase at `rate` req/s against `target`."
    run = run_async(open_loop(target, bodies, rate, args.duration, args.warmup, args.max_in_flight, args.timeout))
    return {**summarise_open_loop(run, f"{target.name} open {rate:g}/s"), "target": target.name}


def run_async(coroutine):
    "Run `coroutine` on uvloop when it is installed (a cheaper load generator), else on asyncio's loop."
    try:
        import uvloop
        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


# --- closed loop: wrk ----------------------------------------------------------------------------------------------
WRK_SCRIPT = """-- generated by benchmarks/bench_serve.py: POST /predict, cycling through the JSON bodies of {bodies_path}
local bodies = {{}}
for line in io.lines({bodies_path_lua}) do bodies[#bodies + 1] = line end
local counter = 0
function setup(thread)
  thread:set("offset", counter * 997)  -- threads start at different texts
  counter = counter + 1
end
local i = 0
function init(args) i = offset or 0 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  i = i % #bodies + 1
  return wrk.format(nil, "/predict", nil, bodies[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,'
    .. '"p999_us":%d,"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def write_wrk_script(folder: Path, bodies: list[bytes]) -> Path:
    "The Lua script for wrk and its bodies file (one JSON body per line; JSON never holds a raw newline)."
    bodies_path = folder / "bodies.jsonl"
    bodies_path.write_bytes(b"\n".join(bodies) + b"\n")
    script = folder / "predict.lua"
    script.write_text(WRK_SCRIPT.format(bodies_path=bodies_path, bodies_path_lua=json.dumps(str(bodies_path))))
    return script


TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output: str) -> dict[str, Any]:
    "RPS, latency percentiles (ms) and errors from `wrk --latency` output (plus the script's BENCH_JSON line)."
    parsed: dict[str, Any] = {"latency_ms": {}}
    for percent, value, unit in re.findall(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M):
        parsed["latency_ms"][f"p{percent}"] = round(float(value) * TIME_UNITS[unit], 2)
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    parsed["rps"] = float(found.group(1)) if found else None
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    if found: parsed["requests"], parsed["duration_s"] = int(found.group(1)), float(found.group(2)) * TIME_UNITS[found.group(3)] / 1000
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    connect, read, write, timeout = map(int, found.groups()) if found else (0, 0, 0, 0)
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non_2xx = int(found.group(1)) if found else 0
    parsed["errors"] = {"non_2xx": non_2xx, "timeout": timeout, "connection": connect + read + write,
                        "connection_by_kind": {"connect": connect, "read": read, "write": write},
                        "total": non_2xx + timeout + connect + read + write}
    found = re.search(r"^BENCH_JSON (\{.*\})\s*$", output, re.M)
    if found:
        extra = json.loads(found.group(1))
        for key in ("p50", "p90", "p95", "p99", "p999", "max", "mean"):
            parsed["latency_ms"].setdefault(key, round(extra[f"{key}_us"] / 1000, 2))
    return parsed


def run_wrk(script: Path, target: Target, connections: int, seconds: int, args: argparse.Namespace, log: Path) -> tuple[str, float]:
    "wrk's output and its CPU seconds, for one closed-loop run of `seconds` s (bounded by a timeout)."
    threads = max(1, min(args.wrk_threads, connections))
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{max(1, math.ceil(args.timeout))}s",
               "--latency", "-s", str(script), f"{target.base_url}/predict"]
    cpu_before = children_cpu_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=_die_with_parent)
    try:
        output, _ = process.communicate(timeout=seconds + args.timeout + 30)
    except BaseException:  # timeout, Ctrl-C: wrk never outlives the benchmark
        process.kill()
        process.wait()
        raise
    text = output.decode(errors="replace")
    with open(log, "a") as handle: handle.write(f"$ {' '.join(command)}\n{text}\n")
    if process.returncode != 0: raise SystemExit(f"wrk failed ({process.returncode}):\n{text}")
    return text, children_cpu_seconds() - cpu_before


def run_closed_phase(target: Target, script: Path, connections: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    "One closed-loop wrk phase (after an unmeasured warm-up run) with the server's CPU and batch sizes over it."
    seconds = max(1, math.ceil(args.duration))  # wrk takes whole seconds
    if args.warmup > 0: run_wrk(script, target, connections, max(1, math.ceil(args.warmup)), args, out / "wrk.log")
    server = psutil.Process(target.process.pid)
    before = batch_counters(http_get(target.base_url + "/metrics")[1].decode(errors="replace")) if target.has_metrics else None
    cpu_before, started = cpu_seconds(server), time.monotonic()
    output, wrk_cpu = run_wrk(script, target, connections, seconds, args, out / "wrk.log")
    wall = time.monotonic() - started
    server_cpu = cpu_seconds(server) - cpu_before
    after = batch_counters(http_get(target.base_url + "/metrics")[1].decode(errors="replace")) if target.has_metrics else None
    parsed = parse_wrk(output)
    window = parsed.get("duration_s") or wall
    ok = parsed.get("requests", 0) - parsed["errors"]["non_2xx"]
    return {"phase": f"{target.name} closed c={connections}", "kind": "closed", "target": target.name, "connections": connections,
            "wrk_threads": max(1, min(args.wrk_threads, connections)), "requests": parsed.get("requests"),
            "rps": parsed["rps"], "achieved_rps": round(ok / window, 1) if window else None, "window_s": round(window, 3),
            "latency_ms": parsed["latency_ms"], "errors": parsed["errors"],
            "server_cpu_percent": round(100 * server_cpu / wall, 1), "generator_cpu_percent": round(100 * wrk_cpu / wall, 1),
            "batch_size": mean_batch(before, after)}


# --- model only: the served variant without the server ------------------------------------------------------------
MODEL_ONLY = """
import json, sys
from ainative.registry import Registry
from ainative.scoring import measure
from ainative.serving import ServingConfig, open_version, runtime_options
texts = json.loads(sys.stdin.read())
config = ServingConfig.from_env()  # the variant and device the server serves; threads: all cores, as the optimisation stage measures
runtime = open_version(Registry(sys.argv[1]), sys.argv[2], sys.argv[3], runtime_options(config))
result = measure(runtime.infer, texts, 32, float(sys.argv[4]), group_by_length=True)
print("MODEL_ONLY " + json.dumps({**result, "variant": runtime.variant, "provider": runtime.provider}))
"""


def model_only(registry_dir: Path, bodies: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    "Texts/s of the served variant alone, as the optimisation stage measures it (batches of 32 grouped by length, all cores), in a fresh process."
    texts = [json.loads(body)["text"] for body in bodies]
    done = subprocess.run([sys.executable, "-c", MODEL_ONLY, str(registry_dir), args.model, args.alias, str(args.model_only_seconds)],
                          input=json.dumps(texts), capture_output=True, text=True, cwd=REPO, timeout=300 + 10 * args.model_only_seconds)
    found = re.search(r"^MODEL_ONLY (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or not found: raise SystemExit(f"the model-only measurement failed:\n{done.stderr[-2000:]}")
    measured = json.loads(found.group(1))
    return {"at": round(time.monotonic(), 1), "throughput": round(measured["throughput"], 1), "variant": measured["variant"],
            "provider": measured["provider"], "p50_ms_per_batch": round(measured["p50_ms"], 2)}


def served_ratios(phases: list[dict[str, Any]], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    "Each closed-loop phase of ainative against the model-only throughput measured around it (the mean of the samples before and after)."
    rows = []
    for phase in phases:
        if phase["kind"] != "closed" or not phase["target"].startswith("ainative") or "ended_at" not in phase: continue
        before = [s for s in samples if s["at"] <= phase["ended_at"]][-1:]
        after = [s for s in samples if s["at"] >= phase["ended_at"]][:1]
        around = before + after
        if not around: continue
        reference = float(np.mean([s["throughput"] for s in around]))
        phase["model_only_rps"] = round(reference, 1)
        phase["served_over_model_only"] = round(phase["achieved_rps"] / reference, 3)
        rows.append({"phase": phase["phase"], "connections": phase["connections"], "served_rps": phase["achieved_rps"],
                     "model_only_rps": round(reference, 1), "ratio": phase["served_over_model_only"],
                     "p99_ms": phase["latency_ms"].get("p99")})
    return rows


# --- hot reload under load ---------------------------------------------------------------------------------------
def register_again(registry_dir: Path, model: str, run_dir: Path, alias: str) -> dict[str, Any]:
    "Register `run_dir` again, of the family `alias` serves, with ONNX (copied by register(), else attached)."
    from ainative.registry import Registry
    registry = Registry(registry_dir)
    family = registry.version_family(model, registry.resolve(model, alias).name).name
    started = time.monotonic()
    version = register_run(registry, run_dir, model, family)
    onnx = "copied by register()"
    if not (registry.resolve(model, version) / "onnx" / "report.json").is_file():
        info = json.loads((run_dir / "onnx" / "report.json").read_text(encoding="utf-8"))
        registry.attach(model, version, "onnx", run_dir / "onnx", info=info)
        onnx = "attached"
    return {"new_version": version, "onnx": onnx, "register_s": round(time.monotonic() - started, 3)}


def promote(registry_dir: Path, model: str, version: str, alias: str) -> dict[str, Any]:
    "Point `alias` at `version`, forcing past the production gate only if it refuses; the history entry."
    from ainative.core import AinativeError
    from ainative.registry import Registry
    registry = Registry(registry_dir)
    try:
        return registry.promote(model, version, alias, reason="bench_serve hot reload")
    except AinativeError as refused:
        entry = registry.promote(model, version, alias, force=True, reason="bench_serve hot reload")
        return {**entry, "gate_refusal": str(refused)}


def run_reload_phase(target: Target, bodies: list[bytes], registry_dir: Path, run_dir: Path, old_version: str,
                     args: argparse.Namespace) -> dict[str, Any]:
    "Promote a new version while an open-loop phase runs; failed requests and how long until responses switch."
    registration = register_again(registry_dir, args.model, run_dir, args.alias)  # before the load: only promote() is timed
    new_version = registration["new_version"]
    promote_after = args.duration / 4
    marks: dict[str, Any] = {}
    outcomes: list[Outcome] = []

    async def promote_now():
        marks["promote_called"] = clock()
        try:
            marks["entry"] = await asyncio.to_thread(promote, registry_dir, args.model, new_version, args.alias)
            marks["promote_returned"] = clock()
        except Exception as error:  # reported, and the phase ends at its normal duration
            marks["promote_error"] = f"{type(error).__name__}: {error}"

    def keep_going() -> bool:
        "Go on until responses have carried the new version for a second (bounded by --reload-timeout)."
        if "promote_error" in marks: return False
        if "promote_returned" not in marks: return True
        first_new = min((o.done for o in outcomes if o.version == new_version and o.done is not None), default=None)
        return first_new is None or first_new > clock() - 1.0

    run = run_async(open_loop(target, bodies, args.reload_rate, args.duration, args.warmup, args.max_in_flight, args.timeout,
                              keep_going=keep_going, max_extra=args.reload_timeout, at={promote_after: promote_now},
                              outcomes=outcomes))
    summary = summarise_open_loop(run, f"{target.name} hot reload {args.reload_rate:g}/s")
    status, body = http_get(target.base_url + "/model")
    served = json.loads(body) if status == 200 else {}
    result = {**summary, "kind": "reload", "old_version": old_version, **registration,
              "failed_requests": summary["errors"]["total"], "promote_entry": marks.get("entry"),
              "promote_error": marks.get("promote_error")}
    if "promote_returned" in marks:
        returned = marks["promote_returned"]
        new_done = [o.done for o in run.outcomes if o.version == new_version]
        old_done = [o.done for o in run.outcomes if o.version == old_version]
        result.update(promote_s=round(returned - marks["promote_called"], 3),
                      promote_called_at_s=round(marks["promote_called"] - run.measure_start, 3),
                      first_new_response_after_promote_s=round(min(new_done) - returned, 3) if new_done else None,
                      last_old_response_after_promote_s=round(max(old_done) - returned, 3) if old_done else None,
                      switched=bool(new_done))
    result.update(served_version_after=served.get("version"), server_last_reload=served.get("last_reload"),
                  timeline=timeline(run.outcomes, run.measure_start))
    return result


# --- facts, report ----------------------------------------------------------------------------------------------
def package_version(module: str) -> str | None:
    "The installed version of the distribution providing `module` (e.g. onnxruntime from onnxruntime-gpu), unimported."
    for distribution in importlib.metadata.packages_distributions().get(module, [module]):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{importlib.metadata.version(distribution)}" + ("" if distribution == module else f" ({distribution})")
    return None


def machine_facts() -> dict[str, Any]:
    "Where the numbers were taken: cores, CPU model, memory, load, Python and library versions, git commit."
    from ainative.core import cpu_model_name
    cpu_model = cpu_model_name()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines() if shutil.which("wrk") else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    return {"cpu_count": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False), "cpu_model": cpu_model,
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "load_average_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(), "python": platform.python_version(), "wrk": wrk[0] if wrk else None,
            "git_commit": commit or None,
            "packages": {name: package_version(name) for name in ("ainative", "onnxruntime", "torch", "transformers", "tokenizers",
                                                                "fastapi", "uvicorn", "uvloop", "httptools", "numpy")}}


def filesystem_of(path: Path) -> str | None:
    "The type of the file system holding `path` (tmpfs would hide the cost of writing the request log to a disk)."
    mounts = [m for m in psutil.disk_partitions(all=True) if str(path.resolve()).startswith(m.mountpoint)]
    return max(mounts, key=lambda m: len(m.mountpoint)).fstype if mounts else None


def server_settings(registry_dir: Path, args: argparse.Namespace, target: Target) -> dict[str, Any]:
    "The server's effective settings (defaults + environment + flags) and what /model says it serves."
    import dataclasses
    from ainative.cli import build_parser
    from ainative.serving import ServingConfig
    flags = build_parser().parse_args(["serve", *shlex.split(args.serve_args)])  # as `ainative serve` reads them
    saved = os.environ.get("AINATIVE_RELOAD_INTERVAL_S")
    os.environ["AINATIVE_RELOAD_INTERVAL_S"] = str(args.reload_interval)
    try:
        config = ServingConfig.from_env(registry_dir=str(registry_dir), model=args.model, alias=args.alias, device=flags.device,
                                        max_batch_size=flags.max_batch_size, max_wait_ms=flags.max_wait_ms,
                                        max_queue=flags.max_queue, threads=flags.threads, request_log=True)
    finally:
        if saved is None: os.environ.pop("AINATIVE_RELOAD_INTERVAL_S")
        else: os.environ["AINATIVE_RELOAD_INTERVAL_S"] = saved
    status, body = http_get(target.base_url + "/model")
    return {"config": dataclasses.asdict(config), "extra_flags": args.serve_args, "model": json.loads(body) if status == 200 else None,
            "environment": {**{k: v for k, v in os.environ.items() if k.startswith("AINATIVE_")},
                            "AINATIVE_RELOAD_INTERVAL_S": str(args.reload_interval), "AINATIVE_REQUEST_LOG": "true"}}


def ratios(phases: list[dict[str, Any]], baselines: list[str]) -> list[dict[str, Any]]:
    "ours / baseline at each closed-loop concurrency: achieved RPS (higher is better) and p99 (lower is better)."
    closed = {(p["target"], p["connections"]): p for p in phases if p["kind"] == "closed"}
    rows = []
    for (name, connections), ours in sorted(closed.items()):
        if name != "ainative": continue
        for baseline in baselines:
            other = closed.get((baseline, connections))
            if not other: continue
            rps = ours["achieved_rps"] / other["achieved_rps"] if other["achieved_rps"] else None
            p99_ours, p99_other = ours["latency_ms"].get("p99"), other["latency_ms"].get("p99")
            rows.append({"baseline": baseline, "connections": connections, "rps_ratio": round(rps, 2) if rps else None,
                         "p99_ratio": round(p99_ours / p99_other, 3) if p99_ours and p99_other else None})
    return rows


def logging_pairs(phases: list[dict[str, Any]], on_target: str = "ainative", off_target: str = LOG_OFF) -> list[dict[str, Any]]:
    "`on_target` / `off_target` at each load (request log on / off by default): per round the RPS and p99 ratios, their median and spread."
    def load(phase): return f"c={phase['connections']}" if phase["kind"] == "closed" else f"{phase['target_rate']:g}/s"
    sides: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for phase in phases:
        if phase.get("target") in (on_target, off_target):
            side = "on" if phase["target"] == on_target else "off"
            sides.setdefault((phase["kind"], load(phase)), {"on": {}, "off": {}})[side][phase.get("round", 1)] = phase
    rows = []
    for (kind, name), found in sides.items():
        rounds = sorted(found["on"].keys() & found["off"].keys())
        if not rounds: continue
        on, off = [found["on"][r] for r in rounds], [found["off"][r] for r in rounds]
        rps = [a["achieved_rps"] / b["achieved_rps"] for a, b in zip(on, off) if a["achieved_rps"] and b["achieved_rps"]]
        p99 = [a["latency_ms"]["p99"] / b["latency_ms"]["p99"] for a, b in zip(on, off) if a["latency_ms"].get("p99") and b["latency_ms"].get("p99")]
        rows.append({"kind": kind, "load": name, "rounds": len(rounds), "on": _pair_side(on), "off": _pair_side(off),
                     "rps_ratios": [round(r, 3) for r in rps], "p99_ratios": [round(r, 3) for r in p99],
                     "rps_ratio": round(float(np.median(rps)), 3) if rps else None,
                     "rps_ratio_range": [round(min(rps), 3), round(max(rps), 3)] if rps else None,
                     "p99_ratio": round(float(np.median(p99)), 3) if p99 else None,
                     "p99_ratio_range": [round(min(p99), 3), round(max(p99), 3)] if p99 else None})
    return rows


def _pair_side(phases: list[dict[str, Any]]) -> dict[str, Any]:
    "The medians over the rounds of one side of the comparison (every phase is in `phases` of the report)."
    def median(values): return round(float(np.median(values)), 2) if values else None
    return {"phases": [phase["phase"] for phase in phases],
            "achieved_rps": median([p["achieved_rps"] for p in phases if p["achieved_rps"] is not None]),
            "achieved_rps_each": [p["achieved_rps"] for p in phases],
            "latency_ms": {key: median([p["latency_ms"][key] for p in phases if p["latency_ms"].get(key) is not None])
                           for key in ("p50", "p99")},
            "errors": sum(p["errors"]["total"] for p in phases),
            "server_cpu_percent": median([p["server_cpu_percent"] for p in phases if p["server_cpu_percent"] is not None])}


def _pair_lines(pairs: list[dict[str, Any]], title: str, labels: dict[str, str]) -> list[str]:
    "A table of on/off pairs: the median on and off rows at each load, and the median ratios with their spread."
    header = (f"{title:<26}{'load':>8}{'rounds':>7}{'rps 2xx':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
              f"{'srv cpu%':>10}{'on/off rps (min-max)':>24}{'on/off p99 (min-max)':>24}")
    lines = [header, "-" * len(header)]
    def spread(median, bounds): return "-" if median is None else f"x{median:.2f} ({bounds[0]:.2f}-{bounds[1]:.2f})"
    for pair in pairs:
        for side in ("on", "off"):
            phase = pair[side]
            last = side == "off"
            lines.append(f"{labels[side]:<26}{pair['load']:>8}{pair['rounds']:>7}{_ms(phase['achieved_rps']):>9}"
                         f"{_ms(phase['latency_ms'].get('p50')):>9}{_ms(phase['latency_ms'].get('p99')):>9}{phase['errors']:>8}"
                         f"{_ms(phase['server_cpu_percent']):>10}"
                         + (f"{spread(pair['rps_ratio'], pair['rps_ratio_range']):>24}"
                            f"{spread(pair['p99_ratio'], pair['p99_ratio_range']):>24}" if last else ""))
    return lines


def format_logging(pairs: list[dict[str, Any]], rows: dict[str, Any], goal: float = 0.10) -> list[str]:
    "Median on/off rows at each load, the median ratios with their spread over the rounds, and the verdict against the goal."
    lines = _pair_lines(pairs, "request log (same load)", {"on": "ainative, log on", "off": "ainative, log off"})
    closed = [p for p in pairs if p["kind"] == "closed" and p["rps_ratio"]]
    if closed:
        worst = min(closed, key=lambda p: p["rps_ratio"])
        cost = 1 - worst["rps_ratio"]
        lines.append(f"request logging: closed-loop /predict throughput on/off x{worst['rps_ratio']:.2f} at worst ({worst['load']}; "
                     f"median of {worst['rounds']} alternated rounds, each x{worst['rps_ratio_range'][0]:.2f} to "
                     f"x{worst['rps_ratio_range'][1]:.2f}), a cost of {100 * cost:.1f}% (below 0: within noise); goal <= "
                     f"{100 * goal:.0f}%: {'met' if cost <= goal else 'NOT met'}")
    else:
        lines.append("no closed-loop pair: open-loop RPS equals the offered rate until the server saturates, so only a "
                     "saturated open-loop pair measures the throughput cost")
    on, off = rows.get("ainative"), rows.get(LOG_OFF)
    lines.append(f"request log rows of the log-on server: {on or 'no counts on /metrics'}"
                 + (" (dropped rows make logging look cheaper than it is)" if on and on.get("dropped") else "")
                 + f"; log-off server: {off or 'no request log'}")
    return lines


def format_shadow(pairs: list[dict[str, Any]], counts: dict[str, Any] | None, share: float) -> list[str]:
    "Shadow on / off rows at each load, the ratios, what the shadow scored or dropped, and its cost at the worst load."
    lines = _pair_lines(pairs, f"shadow {share:g} (same load)", {"on": "ainative, shadow on", "off": "ainative, shadow off"})
    measured = [p for p in pairs if p["rps_ratio"]]
    saturated = [p for p in measured if p["kind"] == "closed"] or measured
    if saturated:
        worst = min(saturated, key=lambda p: p["rps_ratio"])
        lines.append(f"shadow: /predict throughput on/off x{worst['rps_ratio']:.2f} at worst ({worst['kind']} {worst['load']}; median "
                     f"of {worst['rounds']} alternated rounds), p99 x{worst['p99_ratio'] or float('nan'):.2f}"
                     + ("" if worst["kind"] == "closed" else " (open loop: RPS equals the offered rate until the server saturates)"))
    lines.append(f"shadow texts of the shadow server: {counts or 'no counts on /ready'}"
                 + (" (dropped texts make the shadow look cheaper than scoring all of them)" if counts and counts.get("dropped") else ""))
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(report: dict[str, Any]) -> str:
    "The plain-text report: one row per phase, the ratios, readiness and the hot-reload result."
    header = (f"{'phase':<36}{'offered':>9}{'rps 2xx':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'errors n2xx/tmo/conn/ovf':>26}{'srv cpu%':>10}{'gen cpu%':>10}{'batch':>7}")
    lines = [header, "-" * len(header)]
    for phase in report["phases"] + ([report["hot_reload"]] if report.get("hot_reload") else []):
        latency, errors = phase["latency_ms"], phase["errors"]
        offered = f"c={phase['connections']}" if phase["kind"] == "closed" else f"{phase['offered_rps']:g}/s"
        batch = (phase.get("batch_size") or {}).get("mean")
        error_counts = f"{errors['non_2xx']}/{errors['timeout']}/{errors['connection']}/{errors.get('overflow', 0)}"
        lines.append(f"{phase['phase']:<36}{offered:>9}{phase['achieved_rps']:>9.1f}{_ms(latency.get('p50')):>9}"
                     f"{_ms(latency.get('p95')):>9}{_ms(latency.get('p99')):>9}{error_counts:>26}"
                     f"{_ms(phase['server_cpu_percent']):>10}{_ms(phase['generator_cpu_percent']):>10}{'-' if batch is None else batch:>7}")
    lines.append("")
    for row in report["ratios"]:
        lines.append(f"ours/{row['baseline']} at c={row['connections']}: RPS x{row['rps_ratio']}, p99 x{row['p99_ratio']}")
    samples = report.get("model_only") or []
    if samples:
        lines.append(f"model only ({samples[0]['variant']} on {samples[0]['provider']}, batches of 32 grouped by length, all cores; "
                     f"{len(samples)} measurements between the loads): {', '.join(str(round(s['throughput'])) for s in samples)} texts/s")
    for row in report.get("served_ratios", []):
        lines.append(f"served / model only, {row['phase']}: {row['served_rps']:.0f} / {row['model_only_rps']:.0f} = "
                     f"{100 * row['ratio']:.0f}% (p99 {_ms(row['p99_ms'])} ms)")
    if report.get("logging"): lines.extend(format_logging(report["logging"], report.get("request_log_rows", {})) + [""])
    if report.get("shadow"):
        lines.extend(format_shadow(report["shadow"], report.get("shadow_counts"), report["arguments"]["shadow_share"]) + [""])
    readiness = report["readiness"]
    lines.append(f"readiness: /ready {readiness['ainative']['ready_s']:.2f} s after process start "
                 f"(/health {readiness['ainative']['health_s']:.2f} s; goal <= 5 s)"
                 + "".join(f"; {name} {r['ready_s']:.1f} s" for name, r in readiness.items() if name != "ainative"))
    reload = report.get("hot_reload")
    if reload:
        if reload.get("switched"):
            lines.append(f"hot reload {reload['old_version']} -> {reload['new_version']} at {reload['target_rate']:g}/s: "
                         f"{reload['failed_requests']} failed requests (goal 0); promote() took {reload['promote_s']:.2f} s; first "
                         f"response from {reload['new_version']} {reload['first_new_response_after_promote_s']:.2f} s after it returned, "
                         f"last from {reload['old_version']} {_ms(reload['last_old_response_after_promote_s'])} s after")
        else:
            lines.append(f"hot reload: responses never carried {reload['new_version']} "
                         f"({reload.get('promote_error') or 'no switch within --reload-timeout'}); {reload['failed_requests']} failed requests")
    load = report["machine"]
    lines.append(f"machine: {load['cpu_count']} CPUs ({load['cpu_model']}), load average {load['load_average_start']} at start, "
                 f"{load.get('load_average_end')} at end; onnxruntime {load['packages']['onnxruntime']}, python {load['python']}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path | None:
    "Latency percentiles of the open-loop phases against the offered rate (None without matplotlib)."
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    phases = sorted((p for p in report["phases"] if p["kind"] == "open" and p.get("target") == "ainative"), key=lambda p: p["target_rate"])
    if not phases: return None
    figure, axis = plt.subplots(figsize=(6, 4))
    rates = [p["target_rate"] for p in phases]
    for key in ("p50", "p95", "p99"):
        axis.plot(rates, [p["latency_ms"][key] or float("nan") for p in phases], marker="o", label=key)
    axis.set(xlabel="offered rate (req/s, open loop)", ylabel="latency from scheduled send (ms)", yscale="log",
             title="ainative serve: latency vs rate")
    for phase in phases:
        axis.annotate(f"{phase['achieved_rps']:.0f}/s achieved", (phase["target_rate"], phase["latency_ms"]["p99"] or 1),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


# --- orchestration -------------------------------------------------------------------------------------------------
def _terminate_on_sigterm() -> None:
    "Turn SIGTERM into KeyboardInterrupt, so the finally blocks stop every server and wrk."
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def loads(args: argparse.Namespace) -> list[tuple[str, float]]:
    "Every load the servers are measured at: (open, rate) for each rate, then (closed, connections) unless --skip-closed."
    return [("open", rate) for rate in args.rates] + [("closed", c) for c in ([] if args.skip_closed else args.concurrency)]


def run_phase(server: Target, kind: str, load: float, bodies: list[bytes], script: Path, args: argparse.Namespace,
              out: Path) -> dict[str, Any]:
    "One open-loop phase at `load` req/s, or one closed-loop phase at `load` connections."
    if kind == "open": return run_open_phase(server, bodies, load, args)
    return run_closed_phase(server, script, int(load), args, out)


def alternated(servers: list[Target], rounds: int) -> Iterator[tuple[int, Target]]:
    "(round, server) in the order A B, B A, A B ... (one server: once): drift over time falls on both sides alike."
    for number in range(rounds if len(servers) > 1 else 1):
        for server in (servers if number % 2 == 0 else servers[::-1]):
            yield number + 1, server


def run_load_phases(servers: list[Target], bodies: list[bytes], script: Path, args: argparse.Namespace, out: Path,
                    report: dict[str, Any]) -> None:
    "Every load on every server, the servers alternating round by round; then each server's request-log counts."
    for kind, load in loads(args):
        if kind == "closed" and args.model_only_seconds > 0:  # the reference, measured between the loads (the servers idle)
            report["model_only"].append(model_only(servers[0].registry_dir, bodies, args))
            print(f"  model only: {report['model_only'][-1]['throughput']:.0f} texts/s", flush=True)
        for number, server in alternated(servers, args.logging_repeats):
            phase = run_phase(server, kind, load, bodies, script, args, out)
            phase["ended_at"] = round(time.monotonic(), 1)
            if len(servers) > 1: phase.update(phase=f"{phase['phase']} #{number}", round=number)
            report["phases"].append(phase)
            print(f"  done: {phase['phase']}", flush=True)
    if args.model_only_seconds > 0 and not args.skip_closed:
        report["model_only"].append(model_only(servers[0].registry_dir, bodies, args))
        print(f"  model only: {report['model_only'][-1]['throughput']:.0f} texts/s", flush=True)
    time.sleep(1.5)  # the log writer flushes every 0.5 s by default: count what these phases logged
    for server in servers:
        metrics = http_get(server.base_url + "/metrics")[1].decode(errors="replace")
        report.setdefault("request_log_rows", {})[server.name] = request_log_rows(metrics)
        if server.name == SHADOW_ON:
            report["shadow_counts"] = (json.loads(http_get(server.base_url + "/ready")[1] or b"{}").get("challenger") or {}).get("counts")


def run_ours(registry_copies: list[Path], bodies: list[bytes], script: Path, run_dir: Path, version: str,
             args: argparse.Namespace, out: Path, report: dict[str, Any], shadow_copy: Path | None = None) -> None:
    "Readiness, the load phases (request log on; off on the second copy if given; a shadow on `shadow_copy`) and the hot reload."
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ainative_server(registry_copies[0], args, out))  # alone: its readiness is not shared
        report["readiness"]["ainative"] = server.readiness
        print(f"ainative serve ready in {server.readiness['ready_s']:.2f} s at {server.base_url}", flush=True)
        report["server_settings"] = server_settings(registry_copies[0], args, server)
        servers = [server]
        if len(registry_copies) > 1:
            log_off = stack.enter_context(ainative_server(registry_copies[1], args, out, request_log=False))
            report["readiness"][LOG_OFF] = log_off.readiness
            print(f"ainative serve (request log off) ready in {log_off.readiness['ready_s']:.2f} s at {log_off.base_url}", flush=True)
            servers.append(log_off)
        if shadow_copy is not None:
            shadowed = stack.enter_context(ainative_server(shadow_copy, args, out, shadow=True))
            deadline = time.monotonic() + args.ready_timeout  # ready means the champion; the shadow loads after it
            while (json.loads(http_get(shadowed.base_url + "/ready")[1] or b"{}").get("challenger") or {}).get("state") != "serving":
                if time.monotonic() > deadline: raise SystemExit(f"the challenger of {shadowed.base_url} never loaded; see {out / 'server-shadow.log'}")
                time.sleep(0.2)
            report["readiness"][SHADOW_ON] = shadowed.readiness
            print(f"ainative serve (shadow {args.shadow_share:g}) ready in {shadowed.readiness['ready_s']:.2f} s at {shadowed.base_url}", flush=True)
            servers.append(shadowed)
        run_load_phases(servers, bodies, script, args, out, report)
        if not args.skip_reload:  # on the log-on server (the other one idles meanwhile)
            report["hot_reload"] = run_reload_phase(server, bodies, registry_copies[0], run_dir, version, args)
            print(f"  done: {report['hot_reload']['phase']}", flush=True)


def run_baselines(model_dir: Path, version: str, script: Path, args: argparse.Namespace, out: Path, report: dict[str, Any]) -> None:
    "The closed-loop phases against each baseline app, one app at a time."
    for module in ("baseline_torch", "baseline_pipeline"):
        with baseline_server(module, model_dir, version, args, out) as baseline:
            report["readiness"][module] = baseline.readiness
            report["baselines"][module] = json.loads(http_get(baseline.base_url + "/ready")[1] or b"{}")
            print(f"{module} ready in {baseline.readiness['ready_s']:.1f} s at {baseline.base_url}", flush=True)
            for connections in args.concurrency:
                report["phases"].append(run_closed_phase(baseline, script, connections, args, out))
                print(f"  done: {report['phases'][-1]['phase']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    "Run every phase, print the table and write the JSON report (and the plot)."
    args = parse_args(argv)
    _terminate_on_sigterm()
    if not args.skip_closed and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk); or pass --skip-closed for the open-loop phases only")
    registry_dir, out = Path(args.registry_dir).resolve(), Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "wrk.log").write_text("")
    version, manifest = served_version(registry_dir, args.model, args.alias)
    run_dir = Path(args.run_dir).resolve() if args.run_dir else Path(manifest["run"]["path"])
    bodies = load_bodies(run_dir)
    report: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_facts(),
                              "arguments": {k: v for k, v in vars(args).items()}, "served_version": version,
                              "run_dir": str(run_dir), "texts": len(bodies), "readiness": {}, "phases": [], "baselines": {},
                              "model_only": []}
    cores, load = report["machine"]["cpu_count"], report["machine"]["load_average_start"][0]
    if load > 0.5 * cores:
        print(f"warning: the machine is busy (load average {load} on {cores} CPUs); the numbers will be noisy", file=sys.stderr)
    print(f"benchmarking {args.model} {version} ({len(bodies)} test texts from {run_dir}) -> {out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        scratch = Path(scratch)
        from ainative.registry import version_number
        if version_number(args.alias) is not None: args.alias = "production"  # the copy numbers its versions afresh
        copies = [copy_registry(registry_dir, args.model, version, args.alias, run_dir, scratch / name)
                  for name in (["registry"] if args.skip_logging_compare else ["registry", "registry-log-off"])]
        shadow_copy = None
        if args.shadow_compare:  # the version twice: production and, registered again, the challenger
            shadow_copy, _ = copy_registry(registry_dir, args.model, version, args.alias, run_dir, scratch / "registry-shadow")
            copy_registry(registry_dir, args.model, version, "challenger", run_dir, shadow_copy)
        report["copied_as"] = copies[0][1]
        report["request_log_filesystem"] = filesystem_of(copies[0][0])  # where the logging server's SQLite file lives
        script = write_wrk_script(scratch, bodies)
        run_ours([folder for folder, _ in copies], bodies, script, run_dir, copies[0][1], args, out, report, shadow_copy)
        if not args.skip_baselines and not args.skip_closed:
            run_baselines(registry_dir / args.model / version / "model", version, script, args, out, report)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["ratios"] = ratios(report["phases"], list(report["baselines"]))
    report["served_ratios"] = served_ratios(report["phases"], report["model_only"])
    report["logging"] = logging_pairs(report["phases"])
    if args.shadow_compare: report["shadow"] = logging_pairs(report["phases"], SHADOW_ON, "ainative")
    (out / "bench_serve.json").write_text(json.dumps(report, indent=2, default=str))
    if not args.no_plot and plot(report, out / "bench_serve.png"): report["plot"] = str(out / "bench_serve.png")
    print()
    print(format_table(report))
    print(f"\nwrote {out / 'bench_serve.json'}" + (f" and {report['plot']}" if "plot" in report else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every server and wrk was stopped", file=sys.stderr)
        sys.exit(130)
