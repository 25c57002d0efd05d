"""Two downloads of the same dataset file into one cache at the same time (two pipelines, two test workers).

A local server on 127.0.0.1 serves the file; each download's first read waits for the other's, so the two are
always in flight together: each has opened its temporary file before either writes a byte. Each download must
write its own temporary file and rename it into place atomically; both succeed, and the cached file is whole.
"""
from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ainative.data import DatasetSpec, download_file, fetch_named_dataset, read_table

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
BODY = b"text,category\n" + b"".join(f"question {i} about billing please help,billing\n".encode() for i in range(6000))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    monkeypatch.delenv("AINATIVE_DATA_DIR", raising=False)
    for name in PROXY_VARS: monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def paired_server(monkeypatch):
    "Serves BODY on 127.0.0.1; each download's first read waits until the other download has got that far (10 s)."
    together = threading.Barrier(2, timeout=10)
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        def log_message(self, format, *args):
            pass

    class PairedResponse:
        "The response, whose first read waits for the other download: both have opened their file by then."
        def __init__(self, response):
            self.response, self.headers, self.waited = response, response.headers, False
        def read(self, size: int = -1) -> bytes:
            if not self.waited:
                self.waited = True
                try: together.wait()
                except threading.BrokenBarrierError: pass
            return self.response.read(size)
        def __enter__(self): return self
        def __exit__(self, *exc): self.response.close()

    real_urlopen = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: PairedResponse(real_urlopen(*a, **k)))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}/", requests=requests, together=together)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _both(call) -> list:
    "Run `call(i)` for i = 0, 1 in two threads at once; return both results (raising the first error)."
    with ThreadPoolExecutor(2) as pool:
        return [future.result(timeout=60) for future in [pool.submit(call, i) for i in range(2)]]


def test_two_concurrent_downloads_of_one_file_both_succeed(paired_server, tmp_path):
    target = tmp_path / "cache" / "tinyset" / "train.csv"
    sha256 = hashlib.sha256(BODY).hexdigest()
    results = _both(lambda i: download_file(paired_server.url + "tinyset/train.csv", target, sha256))
    assert results == [target, target]
    assert len(paired_server.requests) == 2 and not paired_server.together.broken  # they really overlapped
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha256
    assert sorted(p.name for p in target.parent.iterdir()) == ["train.csv"]  # no temporary file left behind
    assert target.stat().st_mode & 0o777 == 0o644


def test_two_concurrent_fetches_of_a_named_dataset_into_one_cache(paired_server, tmp_path):
    spec = DatasetSpec("tinyset", {"train.csv": hashlib.sha256(BODY).hexdigest()}, paired_server.url + "tinyset/",
                       lambda folder: {"train": read_table(folder / "train.csv", "text", "category")})
    cache = tmp_path / "cache"
    folders = _both(lambda i: fetch_named_dataset(spec, data_dir=None, cache_dir=cache))
    assert folders == [cache / "tinyset"] * 2
    assert len(paired_server.requests) == 2 and not paired_server.together.broken
    parsed = spec.parse(cache / "tinyset")["train"]
    assert isinstance(parsed, pd.DataFrame) and len(parsed) == 6000
    assert sorted(p.name for p in (cache / "tinyset").iterdir()) == ["train.csv"]


def test_a_failed_concurrent_download_leaves_the_good_one_alone(paired_server, tmp_path):
    "One of two overlapping downloads expects another sha256: it fails and deletes only its own temporary file."
    from ainative.core import ChecksumError
    target = tmp_path / "cache" / "train.csv"
    good = hashlib.sha256(BODY).hexdigest()
    def call(i: int):
        try: return download_file(paired_server.url + "train.csv", target, good if i == 0 else "0" * 64)
        except ChecksumError as e: return e
    first, second = _both(call)
    assert first == target and isinstance(second, ChecksumError)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == good
    assert sorted(p.name for p in target.parent.iterdir()) == ["train.csv"]
