"""The named-dataset download path, against a local HTTP server on 127.0.0.1 (no other address is contacted)."""
from __future__ import annotations

import csv
import hashlib
import http.server
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ainative.core import ChecksumError, DataSourceError
from ainative.data import (NAMED_DATASETS, SPLITS, DataConfig, DatasetSpec, fetch_named_dataset, load_splits,
                           prepare_data, read_table)

LABELS = ("billing", "shipping", "returns")
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    "No data directory from CI, no proxy: every request goes straight to the loopback server."
    monkeypatch.delenv("AINATIVE_DATA_DIR", raising=False)
    for name in PROXY_VARS: monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path):
    "A threaded HTTP server on 127.0.0.1 serving tmp_path/served, recording each request's path."
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()
        def log_message(self, format, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}/", requests=requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _write_csv(path: Path, rows: list[tuple[str, str]]):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerows(rows)


def parse_tiny(folder: Path) -> dict[str, pd.DataFrame]:
    return {split: read_table(folder / f"{split}.csv", "text", "category") for split in ("train", "test")}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny(server):
    "The tiny dataset's files on the server, and its spec with their real sha256."
    folder = server.root / "tinyset"
    folder.mkdir()
    _write_csv(folder / "train.csv", [(f"train question {i} about {label}", label) for label in LABELS for i in range(12)])
    _write_csv(folder / "test.csv", [(f"test question {i} about {label}", label) for label in LABELS for i in range(3)])
    spec = DatasetSpec(name="tinyset",
                       files={name: _sha256(folder / name) for name in ("train.csv", "test.csv")},
                       base_url=server.url + "tinyset/", parse=parse_tiny, licence="CC0 (test fixture)")
    assert spec.base_url.startswith("http://127.0.0.1:")
    return SimpleNamespace(spec=spec, folder=folder, server=server)


def _no_partials(folder: Path) -> bool:
    return not folder.exists() or not any(p.name.endswith(".part") for p in folder.iterdir())


def test_download_into_the_cache_verifies_the_files(tiny, tmp_path):
    cache = tmp_path / "cache"
    folder = fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache)
    assert folder == cache / "tinyset"
    for name, sha256 in tiny.spec.files.items():
        assert (folder / name).read_bytes() == (tiny.folder / name).read_bytes()
        assert _sha256(folder / name) == sha256
    assert sorted(tiny.server.requests) == ["/tinyset/test.csv", "/tinyset/train.csv"]
    assert _no_partials(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["test.csv", "train.csv"]


def test_second_fetch_uses_the_cache_without_a_request(tiny, tmp_path):
    cache = tmp_path / "cache"
    first = fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache)
    assert len(tiny.server.requests) == 2
    second = fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache)
    assert second == first
    assert len(tiny.server.requests) == 2


def test_cache_dir_defaults_to_the_env_var(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("AINATIVE_CACHE_DIR", str(tmp_path / "env_cache"))
    folder = fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=None)
    assert folder == tmp_path / "env_cache" / "datasets" / "tinyset"
    assert (folder / "train.csv").is_file()


def test_tampered_cache_file_is_downloaded_again(tiny, tmp_path):
    cache = tmp_path / "cache"
    folder = fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache)
    (folder / "test.csv").write_text("text,category\ntampered,billing\n", encoding="utf-8")
    fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache)
    assert tiny.server.requests.count("/tinyset/test.csv") == 2
    assert tiny.server.requests.count("/tinyset/train.csv") == 1  # the intact file is not fetched again
    assert _sha256(folder / "test.csv") == tiny.spec.files["test.csv"]


def test_wrong_sha256_raises_and_keeps_nothing(tiny, tmp_path):
    cache = tmp_path / "cache"
    wrong = "0" * 64
    spec = replace(tiny.spec, files={"train.csv": wrong, "test.csv": tiny.spec.files["test.csv"]})
    with pytest.raises(ChecksumError) as info:
        fetch_named_dataset(spec, data_dir=None, cache_dir=cache)
    err = info.value
    assert tiny.spec.files["train.csv"] in err.what and wrong in err.what  # actual and expected hashes
    assert err.where == str(cache / "tinyset" / "train.csv")
    assert err.fix
    assert "/tinyset/train.csv" in tiny.server.requests
    assert not (cache / "tinyset" / "train.csv").exists()
    assert not (cache / "tinyset" / "train.csv.part").exists()
    assert _no_partials(cache / "tinyset")


def test_http_404_raises_data_source_error(tiny, tmp_path):
    cache = tmp_path / "cache"
    spec = replace(tiny.spec, files={**tiny.spec.files, "missing.csv": "1" * 64})
    with pytest.raises(DataSourceError) as info:
        fetch_named_dataset(spec, data_dir=None, cache_dir=cache)
    err = info.value
    assert not isinstance(err, ChecksumError)
    assert f"Could not download {tiny.spec.base_url}missing.csv" in err.what
    assert "AINATIVE_DATA_DIR" in err.fix
    assert "/tinyset/missing.csv" in tiny.server.requests
    assert not (cache / "tinyset" / "missing.csv").exists()
    assert _no_partials(cache / "tinyset")


def _copy_to_data_dir(tiny, data_dir: Path) -> Path:
    folder = data_dir / "tinyset"
    folder.mkdir(parents=True)
    for name in tiny.spec.files: (folder / name).write_bytes((tiny.folder / name).read_bytes())
    return folder


def test_data_dir_is_preferred_over_downloading(tiny, tmp_path):
    data_dir, cache = tmp_path / "local_data", tmp_path / "cache"
    local = _copy_to_data_dir(tiny, data_dir)
    assert fetch_named_dataset(tiny.spec, data_dir=data_dir, cache_dir=cache) == local
    assert tiny.server.requests == []
    assert not cache.exists()


def test_data_dir_from_the_env_var_is_preferred(tiny, tmp_path, monkeypatch):
    data_dir, cache = tmp_path / "local_data", tmp_path / "cache"
    local = _copy_to_data_dir(tiny, data_dir)
    monkeypatch.setenv("AINATIVE_DATA_DIR", str(data_dir))
    assert fetch_named_dataset(tiny.spec, data_dir=None, cache_dir=cache) == local
    assert tiny.server.requests == []


def test_data_dir_without_the_dataset_falls_back_to_download(tiny, tmp_path):
    data_dir, cache = tmp_path / "local_data", tmp_path / "cache"
    (data_dir / "tinyset").mkdir(parents=True)
    (data_dir / "tinyset" / "train.csv").write_bytes((tiny.folder / "train.csv").read_bytes())  # test.csv absent
    assert fetch_named_dataset(tiny.spec, data_dir=data_dir, cache_dir=cache) == cache / "tinyset"
    assert len(tiny.server.requests) == 2


def test_tampered_data_dir_file_raises_checksum_error(tiny, tmp_path):
    data_dir, cache = tmp_path / "local_data", tmp_path / "cache"
    local = _copy_to_data_dir(tiny, data_dir)
    with open(local / "train.csv", "a", encoding="utf-8") as f: f.write("an extra row,billing\n")
    with pytest.raises(ChecksumError) as info:
        fetch_named_dataset(tiny.spec, data_dir=data_dir, cache_dir=cache)
    assert info.value.where == str(local / "train.csv")
    assert "train.csv of tinyset" in info.value.what and tiny.spec.files["train.csv"] in info.value.what
    assert info.value.fix
    assert tiny.server.requests == []  # a tampered local copy is an error, not a reason to download
    assert not cache.exists()


def test_prepare_data_on_a_downloaded_named_dataset(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(NAMED_DATASETS, "tinyset", tiny.spec)
    prepared = prepare_data(DataConfig(dataset="tinyset", run_dir=str(tmp_path / "run"),
                                       cache_dir=str(tmp_path / "cache")))
    manifest = prepared.manifest
    assert manifest["source"] == {"kind": "named", "name": "tinyset", "files": tiny.spec.files,
                                  "licence": "CC0 (test fixture)"}
    assert manifest["counts"]["test"] == 9  # the official test split is kept as it is
    assert manifest["counts"]["train"] + manifest["counts"]["validation"] == 36
    assert manifest["num_labels"] == 3
    assert (tmp_path / "cache" / "tinyset" / "train.csv").is_file()
    splits = load_splits(tmp_path / "run" / "data")
    assert sorted(splits["test"].text) == sorted(pd.read_csv(tiny.folder / "test.csv").text)
    assert set(SPLITS) == set(splits)
