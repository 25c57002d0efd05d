"""`ainative predict` on the command line: its help imports no heavy library (torch, transformers, pandas, scikit-learn);
scoring a CSV or JSON Lines file needs neither pyarrow nor tqdm (the slim serving image has neither); usage errors exit
with 2 and failures with 1, saying what to do, with no traceback and no output written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ainative.cli import main

HERE = Path(__file__).resolve().parent
HEAVY = ("torch", "transformers", "pandas", "sklearn")


def test_help_imports_no_heavy_library():
    probe = ("import json, sys\nfrom ainative.cli import main\ntry: status = main(['predict', '--help'])\n"
             "except SystemExit as exit: status = exit.code\n"
             f"print(json.dumps({{'status': status, 'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}), file=sys.stderr)")
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert json.loads(finished.stderr.strip().splitlines()[-1]) == {"status": 0, "heavy": []}
    assert "--shard I/N" in finished.stdout and "--max-errors" in finished.stdout


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_text_files_are_scored_without_pyarrow_or_tqdm(format, tmp_path):
    "As in the slim serving image: pyarrow and tqdm cannot be imported; the progress bar is left out, the rest works."
    path = tmp_path / f"in.{format}"
    path.write_text("text\nrefund please\n" if format == "csv" else '{"text": "refund please"}\n', encoding="utf-8")
    child = ("import sys, json\nsys.path.insert(0, sys.argv[1])\n"
             "sys.modules['pyarrow'] = None; sys.modules['tqdm'] = None  # importing either fails from here on\n"
             "from batch_fixtures import FakeRuntime\nfrom ainative.batch import PredictConfig, predict_file\n"
             "summary = predict_file(PredictConfig(input=sys.argv[2], output=sys.argv[3]), runtime=FakeRuntime())\n"
             "print(json.dumps(summary))")
    finished = subprocess.run([sys.executable, "-c", child, str(HERE), str(path), str(tmp_path / f"out.{format}")],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["answered"] == 1


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_usage_errors_and_failures_say_what_to_do(capsys, tmp_path):
    (tmp_path / "in.csv").write_text("id,text\n1,refund please\n2,\n", encoding="utf-8")
    flags = ["--output", str(tmp_path / "out.csv"), "--registry-dir", str(tmp_path / "no-registry"), "--quiet"]
    status, _, err = run(capsys, "predict", str(tmp_path / "in.csv"), *flags, "--shard", "2/2")
    assert status == 2 and "--shard 2/2 names no part of a file" in err and "fix:" in err
    status, _, err = run(capsys, "predict", str(tmp_path / "in.csv"), *flags, "--input-format", "xlsx")
    assert status == 2 and "input_format='xlsx' is not a format" in err and "['csv', 'jsonl', 'parquet']" in err
    status, _, err = run(capsys, "predict", str(tmp_path / "in.csv"), *flags, "--text-column", "message")
    assert status == 1 and "no column 'message'" in err and "--text-column" in err
    status, _, err = run(capsys, "predict", str(tmp_path / "in.csv"), *flags)  # the input is fine: now the model is missing
    assert status == 1 and "no-registry" in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()
