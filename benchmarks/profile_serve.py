#!/usr/bin/env python
"""Where a request's time goes in `ainative serve`: CPU per request of each thread under load, split by py-spy.

Run it from the repository root with the project's virtual environment (it needs `wrk` and `py-spy`):

    .venv/bin/python benchmarks/profile_serve.py --registry-dir registry --model intent-classifier --out runs/profile-serve

It copies the registry (the request log writes there), starts `ainative serve` with its defaults, warms it up with wrk
(16 connections, Banking77 test texts), then loads it for `--seconds` while reading every thread's CPU time from /proc
and sampling the stacks with py-spy (non-blocking, 100 Hz, idle samples included). Each thread's CPU per request is split
by what its samples were doing:

- the event loop: HTTP (uvicorn, FastAPI routing and validation, middleware, the response) or the engine's part
  (batcher hand-offs, building the answer, metrics, the request log's entry);
- the batch threads: tokenisation and post-processing, or the ONNX Runtime call;
- ONNX Runtime's intra-op pool (native threads), the request log's writer thread, and wrk itself.

It prints the table and writes `<out>/profile_serve.json`. Absolute figures move with the machine's load; compare
runs made one after the other. py-spy's sampling costs the server a little.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve  # noqa: E402  (free_port, write_wrk_script, parse_wrk)

PY_SPY = str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").is_file() else "py-spy"
ENGINE_FRAMES = re.compile(r"answer_texts|build_answer|record_answers|observe_answers|prediction_response|offer_shadow|choose_model|"
                           r"MicroBatcher|Supervised|settle|ThreadPoolExecutor|_chain_future|_call_set_state|classify")


def thread_cpu(pid: int) -> dict[str, float]:
    "CPU seconds (user + system) of each thread of `pid`, by thread id."
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try: stat = (task / "stat").read_text()
        except FileNotFoundError: continue
        fields = stat[stat.rindex(")") + 2:].split()
        found[task.name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def python_thread_names(pid: int) -> dict[str, str]:
    "Python's name of each thread id (py-spy dump), e.g. MainThread, ainative-model_0."
    dump = subprocess.run([PY_SPY, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True).stdout
    return dict(re.findall(r'Thread (\d+) \((?:active|idle)[^)]*\): "([^"]+)"', dump))


def sample_shares(raw: Path) -> tuple[collections.Counter, collections.Counter]:
    "Busy samples of the event loop (http / engine) and of the batch threads (tokenise / ort), from py-spy's raw output."
    loop, batch = collections.Counter(), collections.Counter()
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        thread, *frames = stack.split(";")
        frames = [re.sub(r" \(.*", "", frame) for frame in frames]
        if "MainThread" in thread:
            if frames and not frames[-1].startswith("Runner.run"):  # Runner.run as the leaf: waiting in epoll
                loop["engine" if ENGINE_FRAMES.search(" ".join(frames)) else "http"] += int(count)
        elif "ainative-model" in thread:
            if frames and not frames[-1].startswith(("_worker", "Thread.")):  # the idle worker waits for work
                batch["ort" if "Session.run" in " ".join(frames) else "tokenise"] += int(count)
    return loop, batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry-dir", default="registry", help="registry to serve from; copied, never written (default: %(default)s)")
    parser.add_argument("--model", default="intent-classifier", help="registered model name (default: %(default)s)")
    parser.add_argument("--data-dir", default=os.environ.get("AINATIVE_DATA_DIR", "../shared/data"),
                        help="folder holding banking77/test.csv (default: $AINATIVE_DATA_DIR)")
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds of load (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default: %(default)s)")
    parser.add_argument("--serve-args", default="", help="extra flags for `ainative serve`, e.g. \"--threads 2 --batch-workers 1\"")
    parser.add_argument("--out", default="runs/profile-serve", help="folder for the registry copy, logs and the JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd
    texts = pd.read_csv(Path(args.data_dir) / "banking77" / "test.csv").text.astype(str).tolist()
    script = bench_serve.write_wrk_script(out, [json.dumps({"text": text}).encode() for text in texts])
    registry = out / "registry"
    shutil.rmtree(registry, ignore_errors=True)
    shutil.copytree(args.registry_dir, registry, ignore=shutil.ignore_patterns("monitor.sqlite*"))
    port = bench_serve.free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([bench_serve.ainative_command(), "serve", "--registry-dir", str(registry), "--model", args.model,
                               "--port", str(port), *args.serve_args.split()],
                              stdout=open(out / "server.log", "w"), stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        bench_serve.wait_ready(url, server, time.monotonic(), 180, out / "server.log")
        wrk = ["wrk", "-t2", f"-c{args.connections}", "--latency", "-s", str(script)]
        subprocess.run([*wrk, "-d3s", url + "/predict"], capture_output=True, check=True)  # warm-up
        before, children_before = thread_cpu(server.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        load = subprocess.Popen([*wrk, f"-d{args.seconds}s", url + "/predict"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        spy = subprocess.Popen([PY_SPY, "record", "--pid", str(server.pid), "--threads", "--idle", "--nonblocking", "--rate", "100",
                                "-d", str(max(1, args.seconds - 3)), "-f", "raw", "-o", str(out / "stacks.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        output, _ = load.communicate()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        after, names = thread_cpu(server.pid), python_thread_names(server.pid)
        spy.wait()
    finally:
        server.terminate()
        server.wait(30)
    measured = bench_serve.parse_wrk(output)
    requests = measured["requests"]
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    def threads(predicate): return sum(cpu for tid, cpu in used.items() if predicate(tid, names.get(tid, "")))
    loop_cpu = threads(lambda tid, name: tid == str(server.pid))
    batch_cpu = threads(lambda tid, name: name.startswith("ainative-model"))
    log_cpu = threads(lambda tid, name: name.startswith("ainative-request"))
    pool_cpu = threads(lambda tid, name: tid != str(server.pid) and not name)  # native threads: ONNX Runtime's pool
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    loop, batch = sample_shares(out / "stacks.txt")
    def share(counter, key): return counter[key] / max(sum(counter.values()), 1)
    parts = {"HTTP: uvicorn, FastAPI routing and validation, middleware, response": loop_cpu * share(loop, "http"),
             "engine on the event loop: batcher hand-offs, answer, metrics, request-log entry": loop_cpu * share(loop, "engine"),
             "tokenisation and post-processing (batch threads)": batch_cpu * share(batch, "tokenise"),
             "ONNX Runtime (batch threads + intra-op pool)": batch_cpu * share(batch, "ort") + pool_cpu,
             "request log writer thread": log_cpu, "load generator (wrk)": wrk_cpu}
    per_request = {name: round(1000 * cpu / requests, 3) for name, cpu in parts.items()}
    report = {"model": args.model, "serve_args": args.serve_args, "connections": args.connections, "requests": requests,
              "rps": measured["rps"], "latency_ms": measured["latency_ms"], "cpu_ms_per_request": per_request,
              "total_cpu_ms_per_request": round(sum(per_request.values()), 3), "machine": bench_serve.machine_facts()}
    (out / "profile_serve.json").write_text(json.dumps(report, indent=2))
    print(f"{args.model}: {measured['rps']:.0f} req/s at {args.connections} connections, p99 {measured['latency_ms'].get('p99')} ms")
    for name, value in per_request.items(): print(f"  {value:7.2f} ms  {name}")
    print(f"  {report['total_cpu_ms_per_request']:7.2f} ms  CPU per request in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
