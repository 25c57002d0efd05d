"""`ainative sweep --storage postgresql+psycopg://...`: two worker processes, each with its own run directory (as on two
machines: no file lock is shared), add trials to one Optuna study in one PostgreSQL database (the session's server,
tests/conftest.py). The study's tables are created once, each enqueued trial is run once, and the study resumes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import optuna

from ainative.sweep import STUDY_LOCK, study_lock

AINATIVE = os.path.join(os.path.dirname(sys.executable), "ainative")


def test_two_workers_on_two_machines_share_one_study(sweep_space, postgres_url, tmp_path):
    start = time.time() + 4  # both create the study at the same moment (after their imports)
    code = ("import sys, time\nfrom ainative.cli import main\nwhile time.time() < float(sys.argv[1]): time.sleep(0.001)\n"
            "sys.exit(main(sys.argv[2:]))\n")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(start), "sweep", str(sweep_space), "--run-dir", str(tmp_path / f"worker-{i}"),
                                 "--storage", postgres_url, "--n-trials", "1"], env=os.environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [error[-3000:] for _, error in outputs]
    study = optuna.load_study(study_name="tiny", storage=postgres_url)
    finished = [trial for trial in study.trials if trial.state.is_finished()]
    assert sorted(trial.number for trial in finished) == [0, 1]
    assert {trial.params["learning_rate"] for trial in finished} == {1e-2, 5e-3}  # each worker took another enqueued trial
    waiting = [trial.system_attrs["fixed_params"]["learning_rate"] for trial in study.trials if trial.state.name == "WAITING"]
    assert waiting == [1e-6], waiting  # the third enqueued trial, enqueued once although both workers enqueued it
    for (out, _), worker_dir in zip(outputs, ("worker-0", "worker-1")):
        printed = json.loads(out[out.rindex("{\n  \"run_dir\""):])  # the Trainer prints its own dicts before
        assert printed["study"] == "tiny" and printed["run_dir"].endswith(worker_dir) and printed["trials"] >= 2


def test_the_study_lock_is_the_databases_for_a_server_database_and_a_file_for_sqlite(postgres_url, tmp_path):
    "Workers of one study on a server database queue on an advisory lock there; on SQLite, on a file beside the run."
    import sqlalchemy as sa
    with study_lock(postgres_url, tmp_path) as held:
        assert held == "postgresql advisory lock"
        engine = sa.create_engine(postgres_url)
        with engine.connect() as other:  # another worker's session cannot take it meanwhile
            assert other.execute(sa.select(sa.func.pg_try_advisory_lock(STUDY_LOCK))).scalar() is False
        engine.dispose()
    with study_lock(f"sqlite:///{tmp_path / 'study.sqlite'}", tmp_path) as held:
        assert held == f"file lock {tmp_path / '.study.lock'}"
