"""What the log keeps of a text: the text, a salted and stable hash, or nothing at all (checked in the file's bytes)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ainative.core import ConfigError
from ainative.monitor import MonitorConfig, RequestStore, request_row, text_hash
from monitor_fixtures import START, answer

CANARY = "my account number is CANARY-8675309"
SALT = "a-secret-salt-of-some-length"


def _file_bytes(url: str) -> bytes:
    "The database file and its WAL, as the disk holds them."
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


@pytest.mark.parametrize("privacy", ["text", "hash", "none"])
def test_what_reaches_the_disk(tmp_path, privacy):
    url = f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    store = RequestStore(url, text_privacy=privacy, hash_salt=SALT)
    store.write_requests([request_row("r", 0, answer(), CANARY, 0.01, privacy, SALT, at=START)])
    row = store.recent()[0]
    store.close()
    on_disk = _file_bytes(url)
    assert (b"CANARY-8675309" in on_disk) == (privacy == "text")  # a positive control, and two negatives
    assert row["text_length"] == len(CANARY)
    if privacy == "hash": assert row["text_hash"] == text_hash(CANARY, SALT) and row["text"] is None
    if privacy == "none": assert row["text"] is None and row["text_hash"] is None


def test_hash_is_salted_and_stable():
    assert text_hash(CANARY, SALT) == text_hash(CANARY, SALT)  # equal texts can still be counted
    assert text_hash(CANARY, SALT) != text_hash(CANARY, SALT + "2") != hashlib.sha256(CANARY.encode()).hexdigest()
    assert text_hash(CANARY, SALT) != text_hash(CANARY + " ", SALT) and len(text_hash(CANARY, SALT)) == 64


def test_hash_needs_a_salt(monkeypatch):
    monkeypatch.delenv("AINATIVE_HASH_SALT", raising=False)
    with pytest.raises(ConfigError) as caught:
        MonitorConfig(text_privacy="hash")
    assert "AINATIVE_HASH_SALT" in caught.value.where
    with pytest.raises(ConfigError):
        MonitorConfig(text_privacy="hash", hash_salt="short")
    with pytest.raises(ConfigError):
        request_row("r", 0, answer(), CANARY, 0.01, "hash", None)
    with pytest.raises(ConfigError):
        RequestStore("sqlite:////nonexistent/never-opened.sqlite", text_privacy="hash")
    monkeypatch.setenv("AINATIVE_HASH_SALT", SALT)
    config = MonitorConfig.from_env(text_privacy="hash")
    assert config.salt() == SALT and MonitorConfig(text_privacy="hash").salt() == SALT  # from_env reads it as the field, else salt() does


def test_the_salt_stays_out_of_reports():
    config = MonitorConfig(text_privacy="hash", hash_salt=SALT)
    assert config.to_dict()["hash_salt"] == "***" and SALT not in repr(config)


def test_unknown_privacy_mode():
    with pytest.raises(ConfigError):
        MonitorConfig.from_params({"text_privacy": "encrypt"})
    with pytest.raises(ConfigError):
        request_row("r", 0, answer(), CANARY, 0.01, "encrypt")


def test_unknown_privacy_mode_of_a_store_or_a_config(tmp_path):
    with pytest.raises(ConfigError):
        RequestStore(f"sqlite:///{tmp_path / 'm.sqlite'}", text_privacy="plain")
    with pytest.raises(ConfigError):
        MonitorConfig(text_privacy="plain")
