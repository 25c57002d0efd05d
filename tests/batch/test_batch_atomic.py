"""The output appears under its name only when complete: an error or an interruption mid-run leaves no output (and an
older output at that path untouched, and no temporary file); `ainative predict` stopped with SIGTERM (how Kubernetes
stops a pod) exits 143 and removes its partial file; killed with SIGKILL it leaves no output under the final name."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ainative.batch import PredictConfig, predict_file
from ainative.core import DataEncodingError
from batch_fixtures import FakeRuntime, sample_rows, write_rows

AINATIVE = str(Path(sys.executable).parent / "ainative")


def test_an_error_mid_run_leaves_the_old_output_and_no_partial_file(fake, tmp_path):
    rows = sample_rows(100)
    rows[60]["text"] = "x" * 200_000  # beyond csv's field limit: the reader fails at this row, after chunks were written
    path = write_rows(tmp_path / "in.csv", rows, "csv")
    output = tmp_path / "out" / "scored.csv"
    output.parent.mkdir()
    output.write_text("an older output\n")
    with pytest.raises(DataEncodingError) as failed:
        predict_file(PredictConfig(input=str(path), output=str(output), batch_size=4, chunk_rows=8, progress=False), runtime=fake)
    assert "cannot be read at line" in str(failed.value) and str(path) in failed.value.where
    assert output.read_text() == "an older output\n" and [p.name for p in output.parent.iterdir()] == ["scored.csv"]


class InterruptedRuntime(FakeRuntime):
    "Stopped by the user (Ctrl-C) at its third model call."
    calls = 0

    def infer(self, texts):
        self.calls += 1
        if self.calls == 3: raise KeyboardInterrupt
        return super().infer(texts)


@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
def test_an_interruption_mid_run_leaves_no_output(format, tmp_path):
    path = write_rows(tmp_path / f"in.{format}", sample_rows(50), format)
    output = tmp_path / "out" / f"scored.{format}"
    with pytest.raises(KeyboardInterrupt):  # not an error of one text: the model call is not retried text by text
        predict_file(PredictConfig(input=str(path), output=str(output), batch_size=4, chunk_rows=8, progress=False),
                     runtime=InterruptedRuntime())
    assert list(output.parent.iterdir()) == []


@pytest.fixture(scope="module")
def long_input(tmp_path_factory) -> Path:
    "20,000 rows: a minute and more of scoring on the demo model, so the command can be stopped mid-run."
    return write_rows(tmp_path_factory.mktemp("long") / "in.csv", sample_rows(20_000), "csv")


def start_predict(registry_dir: Path, input: Path, output: Path) -> subprocess.Popen:
    "`ainative predict` as a process, and its partial output file once it holds scored rows."
    command = [AINATIVE, "predict", str(input), "--output", str(output), "--registry-dir", str(registry_dir), "--quiet",
               "--chunk-rows", "64"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_partial(process: subprocess.Popen, output: Path, timeout: float = 180) -> Path:
    "The hidden temporary file beside `output`, once scored rows are in it."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        partial = [p for p in output.parent.glob(f".{output.name}.*.partial") if p.stat().st_size > 0]
        if partial: return partial[0]
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"no partial output within {timeout} s")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_command_leaves_no_output_under_its_name(stop, demo_folder, long_input, tmp_path):
    output = tmp_path / "out" / "scored.csv"
    process = start_predict(demo_folder / "registry", long_input, output)
    partial = wait_for_partial(process, output)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert not output.exists()
    if stop == signal.SIGTERM:  # unwound: the temporary file is removed too
        assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in err
        assert list(output.parent.iterdir()) == []
    else:  # killed outright: only the hidden temporary file can remain
        assert process.returncode == -signal.SIGKILL
        assert [p.name for p in output.parent.iterdir()] == [partial.name] and partial.name.startswith(".scored.csv.")
