"""The baseline is exported to ONNX, never pickled, and the export computes what scikit-learn computes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ainative.baseline import (BaselineConfig, EDGE_TEXTS, baseline_parity, baseline_session, baseline_text,
                               export_baseline, export_baseline_onnx, fit_baseline, onnx_probabilities,
                               require_baseline_parity)
from ainative.core import ConfigError, ModelNotFoundError, ParityError
from ainative.data import load_splits, read_manifest
from ainative.families import find_pickle_files


def test_the_smoke_export_agrees_with_scikit_learn(smoke_export):
    parity = smoke_export.report["parity"]["onnx fp32"]
    assert parity["examples"] == 60 + 30 + len(EDGE_TEXTS)  # every validation and test text, and the edge cases
    assert parity["agreement"] >= 0.995 and parity["max_abs_diff"] <= BaselineConfig.max_probability_diff
    assert smoke_export.report["test_accuracy"]["scikit-learn"] == smoke_export.report["test_accuracy"]["onnx fp32"]


def test_parity_is_measured_again_here_not_only_read_from_the_report(smoke_export):
    run = smoke_export.run
    splits, label2id = load_splits(run.data), read_manifest(run.data)["label2id"]
    classifier = fit_baseline(splits["train"].text.tolist(), splits["train"].label.map(label2id).tolist())
    session = baseline_session(smoke_export.folder / "onnx" / "model.onnx")
    texts = [baseline_text(t) for t in splits["validation"].text]
    expected, got = classifier.predict_proba(texts), onnx_probabilities(session, texts)
    assert (expected.argmax(1) == got.argmax(1)).mean() >= 0.995
    assert np.abs(expected - got).max() <= 1e-4


def test_the_export_writes_a_version_layout_without_pickle(smoke_export):
    files = sorted(p.relative_to(smoke_export.folder).as_posix() for p in smoke_export.folder.rglob("*") if p.is_file())
    assert files == ["calibration/calibration.json", "metrics.json", "model/config.json", "monitoring/reference.json",
                     "onnx/model.onnx", "onnx/report.json"]
    assert find_pickle_files(smoke_export.folder) == []
    report = json.loads((smoke_export.folder / "onnx" / "report.json").read_text())
    assert report["files"] == {"onnx fp32": "model.onnx"} and report["serving_default"] == {"cpu": "model.onnx", "cuda": "model.onnx"}
    metrics = json.loads((smoke_export.folder / "metrics.json").read_text())
    data = read_manifest(smoke_export.run.data)
    assert metrics["family"] == "baseline" and metrics["data_version"] == data["version"]
    assert metrics["test_sha256"] == data["split_sha256"]["test"]
    assert metrics["calibration"]["temperature"] > 0 and metrics["calibration"]["fitted_on"] == "validation"
    reference = json.loads((smoke_export.folder / "monitoring" / "reference.json").read_text())
    assert reference["examples"] == 60 and reference["labels"] == sorted(data["label2id"], key=data["label2id"].get)
    assert smoke_export.run.read_params()["baseline"]["C"] == 20.0


def test_sublinear_tf_is_refused_by_the_probability_bound(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    texts = ["where is my parcel", "my parcel is late", "refund my money", "i want a refund", "cancel my order", "cancel it"]
    labels = [0, 0, 1, 1, 2, 2]
    sublinear = make_pipeline(TfidfVectorizer(token_pattern=r"[a-zA-Z0-9_]+", lowercase=False, sublinear_tf=True),
                              LogisticRegression(C=20.0, max_iter=3000)).fit(texts, labels)
    session = baseline_session(export_baseline_onnx(sublinear, tmp_path / "sublinear.onnx"))
    with pytest.raises(ParityError, match="probability diff"):
        require_baseline_parity(baseline_parity(sublinear, session, [*texts, "cancel cancel cancel my order order"]))


def test_the_training_stages_char_wb_featurisation_cannot_be_exported(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    char_wb = make_pipeline(TfidfVectorizer(analyzer="char_wb"), LogisticRegression()).fit(["ab cd", "ef gh"], [0, 1])
    with pytest.raises(NotImplementedError):
        export_baseline_onnx(char_wb, tmp_path / "char_wb.onnx")


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no data/manifest.json") as error:
        export_baseline(tmp_path / "no-run")
    assert "data stage" in error.value.fix
    with pytest.raises(ConfigError, match="at least two classes"):
        fit_baseline(["a b", "c d"], [0, 0])
    with pytest.raises(ConfigError, match="C=0"):
        BaselineConfig(C=0)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(Exception, match="cannot load the baseline"):
        baseline_session(tmp_path / "broken.onnx")


def test_a_failed_export_leaves_the_previous_baseline_in_place(smoke_export, monkeypatch):
    import ainative.baseline as baseline
    before = (smoke_export.folder / "onnx" / "model.onnx").read_bytes()
    monkeypatch.setattr(baseline, "baseline_parity", lambda *a, **k: {"agreement": 0.5, "max_abs_diff": 1.0, "examples": 2})
    with pytest.raises(ParityError):
        export_baseline(smoke_export.run.path)
    assert (smoke_export.folder / "onnx" / "model.onnx").read_bytes() == before
    assert not list(smoke_export.run.path.glob(".baseline.*"))  # no staging left behind
