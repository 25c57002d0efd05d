"""The request log, on SQLite and PostgreSQL: round trip, windows, retention, concurrent writers; WAL and database faults
as MonitorStoreError (SQLite's own)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ainative.core import ConfigError
from ainative.monitor import MonitorConfig, MonitorStoreError, RequestStore, request_row
from monitor_fixtures import START, answer, rows_for


def test_round_trip_keeps_every_field(store):
    written = [request_row("req-1", 0, answer("intent_03", 0.8125, "v0007"), "where is my card?", 0.0123, at=START),
               request_row("req-1", 1, {**answer("intent_04", 0.5), "truncated": True}, "x" * 3000, 0.0123, at=START + 1)]
    assert store.write_requests(written) == 2
    back = store.recent()
    assert [(r["request_id"], r["position"]) for r in back] == [("req-1", 0), ("req-1", 1)]
    first = back[0]
    assert (first["label"], first["confidence"], first["model_version"], first["latency_s"]) == ("intent_03", 0.8125, "v0007", 0.0123)
    assert first["top_k"] == [{"intent": "intent_03", "confidence": 0.8125}] and first["at"] == START
    assert first["text"] == "where is my card?" and first["text_length"] == 17 and first["truncated"] is False
    assert back[1]["truncated"] is True and back[1]["text_length"] == 3000
    assert store.counts() == {"requests": 2, "feedback": 0}


def test_sqlite_runs_in_wal_mode(sqlite_url):
    store = RequestStore(sqlite_url)
    assert store.describe()["journal_mode"] == "wal"
    store.close()
    database = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as other:  # the mode is a property of the file: every later connection sees it
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_keeps_the_rows(store_url):
    first = RequestStore(store_url)
    first.write_requests(rows_for(["a", "b"]))
    first.close()
    again = RequestStore(store_url)
    assert [r["request_id"] for r in again.recent()] == ["a", "b"]
    again.close()


def test_recent_by_count_and_time(store):
    store.write_requests(rows_for([f"r{i}" for i in range(10)]))
    assert [r["request_id"] for r in store.recent(last_n=3)] == ["r7", "r8", "r9"]
    assert [r["request_id"] for r in store.recent(since=START + 8)] == ["r8", "r9"]
    assert [r["request_id"] for r in store.recent(last_n=1, since=START, until=START + 5)] == ["r4"]
    window = store.window(MonitorConfig(window_requests=5, window_hours=1), now=START + 3600 + 6.5)
    assert [r["request_id"] for r in window] == ["r7", "r8", "r9"]  # the last hour holds 3 of the last 5


@pytest.mark.parametrize("kwargs, where", [({"last_n": 0}, "last_n"), ({"last_n": 2.5}, "last_n"), ({"last_n": True}, "last_n"),
                                           ({"since": float("nan")}, "since"), ({"since": "yesterday"}, "since"),
                                           ({"until": float("inf")}, "until")])
def test_malformed_windows_are_config_errors(store, kwargs, where):
    with pytest.raises(ConfigError) as caught:
        store.recent(**kwargs)
    assert caught.value.where == where


def test_retention_by_age(store):
    store.write_requests(rows_for([f"old{i}" for i in range(3)], at=START - 40 * 86400) + rows_for(["new"], at=START))
    assert store.apply_retention(max_age_days=30, max_rows=None, now=START) == 3
    assert [r["request_id"] for r in store.recent()] == ["new"]


def test_retention_by_rows_drops_the_oldest(store):
    store.write_requests(rows_for([f"r{i}" for i in range(10)]))
    assert store.apply_retention(max_age_days=None, max_rows=4) == 6
    assert [r["request_id"] for r in store.recent()] == ["r6", "r7", "r8", "r9"]
    assert store.apply_retention(max_age_days=None, max_rows=4) == 0
    assert store.apply_retention(max_age_days=None, max_rows=0) == 4 and store.counts()["requests"] == 0


def test_retention_keeps_feedback(store):
    store.write_requests(rows_for(["r0"]))
    store.add_feedback([{"request_id": "r0", "label": "intent_01"}], {"intent_01"})
    store.apply_retention(max_age_days=None, max_rows=0)
    assert store.counts() == {"requests": 0, "feedback": 1}


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-stores"])
def test_concurrent_writers_from_two_threads(store_url, shared):
    stores = [RequestStore(store_url)] if shared else [RequestStore(store_url), RequestStore(store_url)]
    errors, batches, per_batch = [], 40, 25

    def write(store: RequestStore, tag: str):
        try:
            for batch in range(batches):
                store.write_requests(rows_for([f"{tag}-{batch}-{i}" for i in range(per_batch)], at=START + batch))
                if batch % 10 == 0:  # a read-then-write transaction among the writes
                    store.add_feedback([{"request_id": f"{tag}-{batch}-0", "label": "intent_01"}], {"intent_01"})
                store.recent(last_n=5)
        except Exception as error:  # reported below: an exception in a thread would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=write, args=(stores[i % len(stores)], f"t{i}")) for i in range(2)]
    for thread in threads: thread.start()
    for thread in threads: thread.join(120)
    assert errors == []
    ids = [r["request_id"] for r in stores[0].recent()]
    assert len(ids) == len(set(ids)) == 2 * batches * per_batch
    assert stores[0].counts()["feedback"] == 2 * batches // 10
    for store in stores: store.close()


WRITER = """
import sys
from ainative.monitor import RequestStore, request_row
store = RequestStore(sys.argv[1])
answer = {"intent": "intent_00", "confidence": 0.9, "model_version": "v0001", "top_k": []}
for batch in range(20):
    store.write_requests([request_row(f"{sys.argv[2]}-{batch}-{i}", 0, answer, "text", 0.01) for i in range(10)])
"""


def test_concurrent_writers_from_two_processes(store_url):
    "Two processes open an empty log together (one creates the tables, under the schema lock) and write 200 rows each."
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, store_url, f"p{i}"], stderr=subprocess.PIPE, text=True) for i in range(2)]
    for writer in writers:
        assert writer.wait(120) == 0, writer.stderr.read()[-2000:]
    reader = RequestStore(store_url)
    assert reader.counts()["requests"] == 400
    reader.close()


def test_corrupt_file_at_open(tmp_path):
    corrupt = tmp_path / "monitor.sqlite"
    corrupt.write_bytes(b"definitely not an SQLite database " * 100)
    with pytest.raises(MonitorStoreError) as caught:
        RequestStore(f"sqlite:///{corrupt}")
    error = caught.value
    assert error.kind == "corrupt" and str(corrupt) in error.where and "aside" in error.fix
    assert "Traceback" not in str(error) and error.__cause__ is None and error.__suppress_context__


def test_corrupt_file_after_open(sqlite_url):
    store = RequestStore(sqlite_url)
    store.write_requests(rows_for(["a"]))
    store.close()  # connections closed; the next call reconnects to what is on disk now
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")): leftover.unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 4096)
    with pytest.raises(MonitorStoreError) as caught:
        store.write_requests(rows_for(["b"]))
    assert caught.value.kind == "corrupt"


def test_locked_file_gives_a_clear_error_then_recovers(sqlite_url):
    store = RequestStore(sqlite_url, busy_timeout_s=0.2)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(MonitorStoreError) as caught:
            store.write_requests(rows_for(["a"]))
        assert caught.value.kind == "locked" and "busy_timeout_s" in caught.value.fix
        assert store.recent() == []  # WAL: reading goes on while another process writes
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.write_requests(rows_for(["a"])) == 1
    store.close()


def test_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(MonitorStoreError) as caught:
        RequestStore(f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'monitor.sqlite'}")
    assert caught.value.kind == "unavailable"


def test_missing_driver_is_named(tmp_path):
    with pytest.raises(MonitorStoreError) as caught:
        RequestStore("postgresql+pg8000://monitor:secret-password@localhost/monitor")
    assert caught.value.kind == "driver" and "secret-password" not in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "not a url"])
def test_unusable_urls_are_config_errors(url):
    with pytest.raises(ConfigError) as caught:
        RequestStore(url)
    assert caught.value.where == "database_url"
