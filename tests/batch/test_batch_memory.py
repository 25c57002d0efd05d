"""Memory stays bounded: scoring a generated 200,000-row file takes no more memory than a 20,000-row one (within a few
MB), in each format, because rows are read, scored and written `chunk_rows` at a time. The runs are child processes on a
fast stand-in runtime (the model's own memory does not depend on the file); each child reports its peak resident memory.

The peak is the child's VmHWM (/proc/self/status): `getrusage`'s ru_maxrss of a child started from a large process (this
test session) counts the parent's pages from before `exec`, which would hide what the child itself used."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from batch_fixtures import write_rows

HERE = Path(__file__).resolve().parent
CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from batch_fixtures import FakeRuntime
from ainative.batch import PredictConfig, predict_file
summary = predict_file(PredictConfig(input=sys.argv[2], output=sys.argv[3], chunk_rows=2000, progress=False), runtime=FakeRuntime())
with open("/proc/self/status") as status: peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rows": summary["rows"], "answered": summary["answered"], "peak_mb": peak_kb / 1024}))
"""
EXTENSION = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
TEXT_CHARS = 400   # per text: 180,000 more rows hold 72 MB of text, ~110 MB as Python strings
GROWTH_MB = {"csv": 16, "jsonl": 16, "parquet": 60}  # what 180,000 more rows may add to the peak at most
# Parquet's allowance is pyarrow's: its allocator keeps freed pages, and a run over more row groups may peak higher before
# it levels off (measured on an AVX2 host: +3 MB; with 130-character texts +20 to +35 MB, flat from 200,000 to 600,000
# rows, and as much for pyarrow reading the file alone; on an AVX-512 host, three runs of this file: +6, +18, +39 MB,
# and +16 to +20 MB with ARROW_DEFAULT_MEMORY_POOL=system). Holding the file would add 110 MB or more (the texts as
# Python strings), so 60 MB still tells bounded from growing. CSV and JSON Lines grow by less than 1 MB.


def generated(folder: Path, rows: int, format: str) -> Path:
    "A file of `rows` texts of `TEXT_CHARS` characters with an id, written 20,000 rows at a time (Parquet: one row group each)."
    phrases = ["where is my parcel, it was due on Monday", "I want a refund for my order", "cancel my subscription please",
               "my card was declined at the shop this morning"]
    path = folder / f"in-{rows}{EXTENSION[format]}"
    writer = None
    for start in range(0, rows, 20_000):
        part = [{"id": i, "text": f"{phrases[i % 4]} (ticket {i}) ".ljust(TEXT_CHARS, "x")} for i in range(start, min(start + 20_000, rows))]
        if format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.Table.from_pylist(part)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        elif start == 0: write_rows(path, part, format)
        elif format == "csv":
            with open(path, "a", encoding="utf-8", newline="") as file: csv.writer(file).writerows([row["id"], row["text"]] for row in part)
        else:
            with open(path, "a", encoding="utf-8") as file: file.writelines(json.dumps(row) + "\n" for row in part)
    if writer: writer.close()
    return path


def peak_memory(path: Path, output: Path) -> dict:
    "Score `path` into `output` in a child process: its rows, answers and peak resident memory in MB."
    finished = subprocess.run([sys.executable, "-c", CHILD, str(HERE), str(path), str(output)], capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak memory from /proc (Linux)")
@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
def test_the_peak_memory_does_not_grow_with_the_file(format, tmp_path):
    small = peak_memory(generated(tmp_path, 20_000, format), tmp_path / f"out-small{EXTENSION[format]}")
    large = peak_memory(generated(tmp_path, 200_000, format), tmp_path / f"out-large{EXTENSION[format]}")
    assert (small["rows"], small["answered"], large["rows"], large["answered"]) == (20_000, 20_000, 200_000, 200_000)
    assert large["peak_mb"] - small["peak_mb"] < GROWTH_MB[format], (small, large)
    assert large["peak_mb"] < 400, large  # imports (numpy, pyarrow, the serving engine) and one chunk
