"""Schema versions (Alembic), on SQLite and PostgreSQL: a migrated database is exactly what the store's tables describe,
a log made before versions is adopted without losing a row, replicas opening an empty database together create it
once, a schema from a newer release is read but never written, and `upgrade_schema=False` leaves the schema to
`ainative monitor migrate`."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ainative.monitor import FEEDBACK, METADATA, MonitorStoreError, RequestStore, request_row
from ainative.store import VERSION_TABLE, VERSIONS, schema_revisions, schema_state, upgrade_to_head
from monitor_fixtures import START, answer, rows_for

# What `RequestStore` created before the schema had versions (METADATA.create_all of ainative 0.1, as compiled for
# SQLite and PostgreSQL): frozen here, as the baseline migration froze it.
BEFORE_VERSIONS = """
CREATE TABLE feedback (id {serial} NOT NULL, request_id VARCHAR(200), position INTEGER, label VARCHAR(256) NOT NULL,
    at FLOAT NOT NULL, source VARCHAR(64), text TEXT, text_hash VARCHAR(64), PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_feedback_request ON feedback (request_id, position);
CREATE INDEX ix_feedback_at ON feedback (at);
CREATE TABLE requests (id {serial} NOT NULL, request_id VARCHAR(200) NOT NULL, position INTEGER NOT NULL, at FLOAT NOT NULL,
    model_version VARCHAR(64), role VARCHAR(16), label VARCHAR(256), abstained BOOLEAN, confidence FLOAT, top_k TEXT,
    latency_s FLOAT, text_length INTEGER, text TEXT, text_hash VARCHAR(64), truncated BOOLEAN NOT NULL, unknown_rate FLOAT,
    embedding {blob}, PRIMARY KEY (id));
CREATE INDEX ix_requests_request ON requests (request_id, position);
CREATE INDEX ix_requests_at ON requests (at);
INSERT INTO requests (request_id, position, at, model_version, label, confidence, top_k, truncated)
    VALUES ('old-1', 0, 1.0, 'v0001', 'intent_00', 0.9, '[]', false);
INSERT INTO feedback (request_id, position, label, at, source) VALUES ('old-1', 0, 'intent_01', 2.0, 'api');
"""


def run_sql(url: str, script: str) -> None:
    if url.startswith("sqlite:///"): Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in filter(str.strip, script.split(";")): connection.exec_driver_sql(statement)
    engine.dispose()


def set_revision(url: str, revision: str) -> None:
    "What a newer (or older) release's migration would leave behind: another recorded revision."
    engine = sa.create_engine(url)
    with engine.begin() as connection: connection.execute(VERSIONS.update().values(version_num=revision))
    engine.dispose()


def differences(url: str) -> list:
    "What Alembic's autogenerate finds between the database at `url` and the store's tables (nothing: they agree)."
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}), METADATA)
    engine.dispose()
    return found


def test_one_linear_history_whose_head_is_the_baseline():
    assert schema_revisions() == ("0001",)


def test_a_migrated_database_is_what_the_tables_describe(store, store_url):
    assert store.schema["state"] == "current" and store.schema["upgraded_from"] == "empty"
    assert differences(store_url) == []
    assert store.describe()["schema"] == {"revision": "0001", "head": "0001", "state": "current", "writable": True}


def test_a_log_made_before_versions_is_adopted_and_keeps_its_rows(store_url):
    postgres = store_url.startswith("postgresql")
    run_sql(store_url, BEFORE_VERSIONS.format(serial="SERIAL" if postgres else "INTEGER", blob="BYTEA" if postgres else "BLOB"))
    store = RequestStore(store_url)
    try:
        assert (store.schema["state"], store.schema["upgraded_from"], store.added_columns) == ("current", "unversioned", [])
        assert [row["request_id"] for row in store.recent()] == ["old-1"] and store.counts() == {"requests": 1, "feedback": 1}
        stored = store.add_feedback([{"request_id": "old-1", "label": "intent_02"}], {"intent_02"})  # the latest correction wins
        assert stored[0]["replaced"] and store.counts()["feedback"] == 1
        store.write_requests(rows_for(["new-1"]))
        assert differences(store_url) == []
    finally:
        store.close()
    again = RequestStore(store_url)
    assert again.schema["state"] == "current" and "upgraded_from" not in again.schema
    again.close()


OPEN_TOGETHER = """
import sys, time
from ainative.monitor import RequestStore, MonitorStoreError
while time.time() < float(sys.argv[2]): time.sleep(0.001)
try:
    store = RequestStore(sys.argv[1])
    store.write_requests([])
    print(store.schema.get("upgraded_from", "found"))
except MonitorStoreError as error:
    print("FAILED", error)
"""


def test_replicas_opening_an_empty_database_together_create_it_once(store_url):
    """Four processes open one empty database at the same moment: one creates the tables, the others wait on the schema
    lock and find them. (Before the lock, PostgreSQL failed one opener in three: `relation "requests" already exists`.)"""
    start = time.time() + 3  # after every interpreter has imported the store
    openers = [subprocess.Popen([sys.executable, "-c", OPEN_TOGETHER, store_url, str(start)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    said = [opener.communicate(timeout=120) for opener in openers]
    outcomes = sorted(out.strip() for out, _ in said)
    assert outcomes == ["empty", "found", "found", "found"], said


def test_a_schema_from_a_newer_release_is_read_but_never_written(store, store_url):
    store.write_requests(rows_for(["r0", "r1"]))
    set_revision(store_url, "0002")  # a newer release's replica migrated the database under this one's feet
    for write in (lambda: store.write_requests(rows_for(["r2"])), lambda: store.apply_retention(max_rows=0),
                  lambda: store.add_feedback([{"request_id": "r0", "label": "intent_01"}], {"intent_01"})):
        with pytest.raises(MonitorStoreError) as caught:
            write()
        assert caught.value.kind == "schema" and "0002" in caught.value.what and "rolling update" in caught.value.fix
    assert store.schema["state"] == "newer" and not store.schema["writable"]
    assert [row["request_id"] for row in store.recent()] == ["r0", "r1"]  # reading goes on
    reopened = RequestStore(store_url)  # opening (even allowed to upgrade) touches nothing
    assert reopened.schema["state"] == "newer" and schema_revisions()[-1] == "0001"
    reopened.close()
    set_revision(store_url, "0001")  # back to what this release knows: writing resumes
    assert store.write_requests(rows_for(["r2"])) == 1 and store.schema["state"] == "current"


def test_with_upgrades_off_only_migrate_changes_the_schema(store_url):
    store = RequestStore(store_url, upgrade_schema=False)
    try:
        assert store.schema["state"] == "empty"
        with pytest.raises(MonitorStoreError) as caught:
            store.write_requests(rows_for(["r0"]))
        assert caught.value.kind == "schema" and "ainative monitor migrate" in caught.value.fix
        engine = sa.create_engine(store_url)
        with engine.begin() as connection: assert upgrade_to_head(connection)["state"] == "current"  # what `migrate` runs
        engine.dispose()
        assert store.write_requests(rows_for(["r0"])) == 1  # the next write sees the migrated schema
    finally:
        store.close()


def test_an_older_schema_is_not_written_with_upgrades_off(store_url, monkeypatch):
    "A release whose head is 0002 meets a database at 0001: with upgrades off it refuses to write and says to migrate."
    RequestStore(store_url).close()
    monkeypatch.setattr("ainative.store.schema_revisions", lambda: ("0001", "0002"))
    store = RequestStore(store_url, upgrade_schema=False)
    try:
        assert (store.schema["state"], store.schema["revision"], store.schema["head"]) == ("older", "0001", "0002")
        with pytest.raises(MonitorStoreError) as caught:
            store.write_requests(rows_for(["r0"]))
        assert "older than this version's 0002" in caught.value.what and "ainative monitor migrate" in caught.value.fix
    finally:
        store.close()


def test_two_replicas_correcting_one_answer_at_once_keep_one_correction(store_url):
    "Feedback writers queue (SQLite's write lock, PostgreSQL's advisory lock): no unique-index failure, the latest wins."
    replicas = [RequestStore(store_url), RequestStore(store_url)]
    replicas[0].write_requests([request_row("q", 0, answer("intent_00"), "where is it?", 0.01, at=START)])
    errors = []

    def correct(store: RequestStore, label: str):
        try:
            for _ in range(15): store.add_feedback([{"request_id": "q", "label": label}], {"intent_01", "intent_02"})
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=correct, args=(replica, label)) for replica, label in zip(replicas, ("intent_01", "intent_02"))]
    for thread in threads: thread.start()
    for thread in threads: thread.join(120)
    assert errors == []
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(FEEDBACK)).scalar_one() == 1
    engine.dispose()
    for replica in replicas: replica.close()


def test_the_wheel_ships_the_migrations(tmp_path):
    "env.py and every revision are in the wheel (setup.py's package finder), and Alembic finds the same head in it."
    import shutil
    import zipfile
    from alembic.script import ScriptDirectory
    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "settings.ini", "README.md"): shutil.copy(root / name, source / name)
    shutil.copytree(root / "ainative", source / "ainative", ignore=shutil.ignore_patterns("__pycache__", "stages"))
    shutil.copytree(root / "nbs", source / "nbs", ignore=lambda folder, names: [n for n in names if not n.endswith(".ipynb")])
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("ainative-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("ainative/migrations/")}
        archive.extractall(tmp_path / "installed", members=sorted(shipped))
    revisions = {path.relative_to(root).as_posix() for path in (root / "ainative" / "migrations").rglob("*.py")}
    assert "ainative/migrations/env.py" in shipped and revisions <= shipped, revisions - shipped
    script = ScriptDirectory(str(tmp_path / "installed" / "ainative" / "migrations"))
    assert script.get_heads() == [schema_revisions()[-1]]
