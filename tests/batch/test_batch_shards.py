"""`--shard i/n`: the n parts of a file, scored apart and concatenated in order, are exactly the single run's output, in
every format, with more parts than rows, a last partial part, bad rows, chunk sizes that differ between the runs and a
Parquet file whose row groups do not fall on the parts' edges. The stand-in runtime's confidence depends on how many
texts it scores at once (as INT8's answers do on their batch-mates), so a part that regrouped its texts would differ."""
from __future__ import annotations

import pytest

from ainative.batch import PredictConfig, predict_file, shard_bounds
from batch_fixtures import read_rows, sample_rows, write_rows

EXTENSION = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
ROWS = 23
BATCH = 4


def rows_with_bad_ones() -> list[dict]:
    rows = sample_rows(ROWS)
    rows[5]["text"], rows[17]["text"] = "", "   "  # bad rows, inside a batch window: its other texts are scored without them
    return rows


def score(path, output, **options) -> dict:
    config = PredictConfig(input=str(path), output=str(output), batch_size=BATCH, progress=False, **options)
    from batch_fixtures import FakeRuntime
    return predict_file(config, runtime=FakeRuntime())


def concatenated(parts: list, format: str) -> bytes | list:
    "The parts as one output: JSON Lines bytes end to end; CSV with the first part's header only; Parquet's rows in order."
    if format == "jsonl": return b"".join(part.read_bytes() for part in parts)
    if format == "csv": return b"".join(part.read_bytes().split(b"\n", 1)[1] if i else part.read_bytes() for i, part in enumerate(parts))
    return [row for part in parts for row in read_rows(part, format)]


@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 9])  # 23 rows are 6 windows of 4: 9 parts leave some empty, 5 a short last one
def test_the_parts_concatenate_to_the_single_run(format, count, tmp_path):
    path = write_rows(tmp_path / f"in{EXTENSION[format]}", rows_with_bad_ones(), format, row_group_size=3)
    whole = tmp_path / f"whole{EXTENSION[format]}"
    single = score(path, whole)
    parts, counted = [], 0
    for index in range(count):
        part = tmp_path / "parts" / f"part-{index}{EXTENSION[format]}"
        summary = score(path, part, shard=f"{index}/{count}", chunk_rows=5)  # chunks of 4 here, of 10,000 in the single run
        start, stop = shard_bounds(ROWS, index, count, BATCH)
        assert summary["rows"] == stop - start and summary["shard"] == f"{index}/{count}"
        counted += summary["rows"]
        parts.append(part)
    expected = whole.read_bytes() if format != "parquet" else read_rows(whole, format)
    assert concatenated(parts, format) == expected
    assert counted == single["rows"] == ROWS and single["errors"] == 2


def test_more_parts_than_rows_gives_valid_empty_parts(tmp_path):
    path = write_rows(tmp_path / "in.parquet", sample_rows(2), "parquet")
    sizes = []
    for index in range(4):
        part = tmp_path / f"part-{index}.csv"
        sizes.append(score(path, part, shard=f"{index}/4")["rows"])
        assert read_rows(part, "csv") == [] or sizes[-1] > 0
    assert sizes == [0, 0, 0, 2]  # one window of 4 rows holds both: the last part


def test_the_parts_are_whole_windows_of_nearly_equal_size():
    for rows in (0, 1, 31, 32, 33, 1000, 3080):
        for count in (1, 2, 3, 7, 64):
            bounds = [shard_bounds(rows, index, count, 32) for index in range(count)]
            assert bounds[0][0] == 0 and bounds[-1][1] == rows
            assert all(previous[1] == following[0] for previous, following in zip(bounds, bounds[1:]))
            assert all(start % 32 == 0 for start, _ in bounds)
            windows = [-(-(stop - start) // 32) for start, stop in bounds]
            assert max(windows) - min(windows) <= 1
