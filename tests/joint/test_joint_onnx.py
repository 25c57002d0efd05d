"The joint model's ONNX export: both outputs, and fp32 parity with torch on intents, tags and entities."
import numpy as np
import pytest
import torch

from ainative.joint import load_joint_model, predict_joint
from ainative.optimize import (JOINT_ONNX_OUTPUTS, OnnxJointRunner, export_joint_onnx, export_onnx, joint_parity,
                               onnx_export_for)
from ainative.spans import bio_tags

TAGS = bio_tags(["city", "day"])
TEXTS = ["fly to  Boston on friday!", "weather in paris", "ＦＵＬＬ width Ｔｏｋｙｏ 🙂", "ligature ﬁnland",
         " ".join(["oslo"] * 80), "a"]


@pytest.fixture(scope="module")
def joint_model(tiny_base_dir):
    model = load_joint_model(str(tiny_base_dir), {"book_flight": 0, "get_weather": 1}, TAGS)
    torch.manual_seed(1)
    with torch.no_grad():  # tag scores far enough apart that fp32 rounding cannot flip one
        model.tagger.weight.normal_(0, 2.0)
        model.classifier.weight.normal_(0, 2.0)
    return model.eval()


def test_the_task_chooses_the_export(joint_model):
    from ainative.demo import tiny_model
    assert onnx_export_for(joint_model) is export_joint_onnx and onnx_export_for(tiny_model()) is export_onnx


def test_fp32_export_agrees_with_torch_on_intents_tags_and_entities(joint_model, tokenizer, tmp_path):
    path = export_joint_onnx(joint_model, tokenizer, tmp_path / "joint.onnx")
    runner = OnnxJointRunner(path, tokenizer, TAGS, max_length=32, device="cpu")
    assert [o.name for o in runner.session.get_outputs()] == list(JOINT_ONNX_OUTPUTS)
    reference = predict_joint(joint_model, tokenizer, TEXTS, max_length=32)
    exported = runner.predict(TEXTS)
    parity = joint_parity(reference, exported)
    assert parity["intent_agreement"] == parity["tag_agreement"] == parity["entity_agreement"] == 1.0, parity
    assert parity["max_abs_diff_intent_probability"] < 1e-5
    assert any(reference.entities)  # the comparison compared entities, not empty lists
    for text, entities in zip(TEXTS, exported.entities):
        assert all(0 <= e.span.start < e.span.end <= len(text) for e in entities)
