"""Data expectations on the real Banking77 and CLINC150, read from the data directory (never downloaded).

The data directory is `$AINATIVE_DATA_DIR`, else `<repo>/../shared/data`. Without one the tests skip,
except under CI (`$CI` set), where a missing data directory is a failure.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ainative.core import sha256_file
from ainative.data import NAMED_DATASETS, SPLITS, DataConfig, load_splits, prepare_data

REPO = Path(__file__).resolve().parents[2]


def _data_dir() -> Path:
    "The env var when set (and then only it), else the shared folder beside the repository."
    env = os.environ.get("AINATIVE_DATA_DIR")
    candidate = Path(env) if env else REPO.parent / "shared" / "data"
    if candidate.is_dir(): return candidate.resolve()
    message = (f"AINATIVE_DATA_DIR={env} is not a folder" if env else
               f"no data directory: AINATIVE_DATA_DIR is unset and {candidate} does not exist")
    if os.environ.get("CI"): pytest.fail(message)
    pytest.skip(message)


def _readme_sha256(data_dir: Path) -> dict[str, str]:
    "relative path -> sha256, from the data directory's README.md (`<64 hex>  <dataset>/<file>` lines)."
    readme = data_dir / "README.md"
    if not readme.is_file(): pytest.fail(f"{readme} is missing: cannot check the source checksums")
    pairs = re.findall(r"^([0-9a-f]{64})\s+(\S+)$", readme.read_text(encoding="utf-8"), flags=re.M)
    return {path: sha for sha, path in pairs}


def _prepare(name: str, tmp_path_factory):
    data_dir = _data_dir()
    missing = [f for f in NAMED_DATASETS[name].files if not (data_dir / name / f).is_file()]
    if missing:  # never fall through to a download from the internet
        message = f"{data_dir / name} lacks {missing}"
        if os.environ.get("CI"): pytest.fail(message)
        pytest.skip(message)
    run_dir = tmp_path_factory.mktemp(f"{name}-run")
    prepared = prepare_data(DataConfig(dataset=name, run_dir=str(run_dir), data_dir=str(data_dir),
                                       cache_dir=str(tmp_path_factory.mktemp(f"{name}-cache"))))
    return data_dir, prepared


@pytest.fixture(scope="module")
def banking77(tmp_path_factory):
    return _prepare("banking77", tmp_path_factory)


@pytest.fixture(scope="module")
def clinc150(tmp_path_factory):
    return _prepare("clinc150", tmp_path_factory)


@pytest.fixture(params=["banking77", "clinc150"])
def dataset(request):
    return request.param, *request.getfixturevalue(request.param)


def _dropped(manifest, split: str) -> int:
    return sum(manifest["dropped"].get(split, {}).values())


# ----------------------------------------------------------------------------------------------- Banking77
def test_banking77_has_77_labels(banking77):
    _, prepared = banking77
    assert prepared.manifest["num_labels"] == 77
    assert len(prepared.manifest["label2id"]) == 77
    for split in SPLITS: assert prepared.splits[split].label.nunique() == 77


def test_banking77_keeps_the_label_with_a_question_mark(banking77):
    _, prepared = banking77
    assert "reverted_card_payment?" in prepared.manifest["label2id"]
    assert "reverted_card_payment" not in prepared.manifest["label2id"]
    for split in SPLITS:
        assert (prepared.splits[split].label == "reverted_card_payment?").any(), split
    label_id = prepared.manifest["label2id"]["reverted_card_payment?"]
    assert prepared.manifest["id2label"][str(label_id)] == "reverted_card_payment?"


def test_banking77_keeps_the_official_test_set(banking77):
    _, prepared = banking77
    manifest = prepared.manifest
    test = manifest["counts"]["test"]
    assert 3000 <= test <= 3080
    assert 3080 - test == _dropped(manifest, "test")  # every missing test row is a counted drop


def test_banking77_validation_is_carved_from_train(banking77):
    _, prepared = banking77
    counts = prepared.manifest["counts"]
    assert counts["train"] + counts["validation"] == 10003 - _dropped(prepared.manifest, "train")
    assert _dropped(prepared.manifest, "validation") == 0
    share = counts["validation"] / (counts["train"] + counts["validation"])
    assert share == pytest.approx(0.1, abs=0.005)


def test_banking77_test_labels_have_35_to_40_rows(banking77):
    _, prepared = banking77
    per_label = prepared.splits["test"].label.value_counts()
    assert len(per_label) == 77
    assert per_label.min() >= 35 and per_label.max() <= 40
    assert per_label.to_dict() == prepared.manifest["label_counts"]["test"]


# ----------------------------------------------------------------------------------------------- CLINC150
def test_clinc150_has_150_intents_and_oos(clinc150):
    _, prepared = clinc150
    assert prepared.manifest["num_labels"] == 151
    assert "oos" in prepared.manifest["label2id"]


def test_clinc150_keeps_the_official_validation_and_test(clinc150):
    _, prepared = clinc150
    manifest = prepared.manifest
    counts = manifest["counts"]
    assert 3050 <= counts["validation"] <= 3100
    assert 5450 <= counts["test"] <= 5500
    assert 3100 - counts["validation"] == _dropped(manifest, "validation")
    assert 5500 - counts["test"] == _dropped(manifest, "test")
    assert counts["train"] == 15100 - _dropped(manifest, "train")


def test_clinc150_has_oos_in_every_split(clinc150):
    _, prepared = clinc150
    expected_at_least = {"train": 100, "validation": 90, "test": 900}
    for split in SPLITS:
        assert (prepared.splits[split].label == "oos").sum() >= expected_at_least[split], split


# ----------------------------------------------------------------------------------------------- both
def test_no_text_of_validation_or_test_occurs_in_train(dataset):
    _, _, prepared = dataset
    train = set(prepared.splits["train"].text)
    validation = set(prepared.splits["validation"].text)
    assert not (validation & train)
    assert not (set(prepared.splits["test"].text) & train)
    assert not (set(prepared.splits["test"].text) & validation)


def test_no_duplicate_text_label_pairs(dataset):
    _, _, prepared = dataset
    for split in SPLITS:
        frame = prepared.splits[split]
        assert not frame.duplicated(["text", "label"]).any(), split
        assert frame.text.map(lambda t: isinstance(t, str) and t == t.strip() and t != "").all(), split


def test_manifest_hashes_verify(dataset):
    _, _, prepared = dataset
    data_dir = prepared.run.data
    manifest = prepared.manifest
    assert set(manifest["files"]) == {f"{s}.parquet" for s in SPLITS}
    for name, sha256 in manifest["files"].items(): assert sha256_file(data_dir / name) == sha256
    loaded = load_splits(data_dir)  # verifies the sha256 of every split file
    for split in SPLITS:
        assert len(loaded[split]) == manifest["counts"][split]
        assert loaded[split].text.tolist() == prepared.splits[split].text.tolist()
        assert (loaded[split].label.map(manifest["label2id"]) == loaded[split].label_id).all()


def test_source_checksums_match_the_data_readme(dataset):
    name, data_dir, prepared = dataset
    readme = _readme_sha256(data_dir)
    source_files = prepared.manifest["source"]["files"]
    expected = {path.split("/", 1)[1]: sha for path, sha in readme.items() if path.startswith(f"{name}/")}
    assert source_files and set(source_files) <= set(expected)
    for file_name, sha256 in source_files.items():
        assert sha256 == expected[file_name]
        assert sha256_file(data_dir / name / file_name) == sha256  # the copy actually read
