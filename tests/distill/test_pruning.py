"The pruned student's layer mapping on a tiny BERT built here: student layer i is the chosen teacher layer, weight for weight."
from __future__ import annotations

import pytest
import torch

from ainative.core import AinativeError, ConfigError
from ainative.distill import alternate_layers, prune_layers, pruned_student

from distill_fixtures import save_tiny_bert, tiny_bert


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("prune") / "teacher", num_layers=4, seed=3)


def assert_same_layer(student_layer, teacher_layer):
    ours, theirs = student_layer.state_dict(), teacher_layer.state_dict()
    assert list(ours) == list(theirs)
    for name in theirs: assert torch.equal(ours[name], theirs[name]), name


@pytest.mark.parametrize("keep, offset", [((1, 3), 1), ((0, 2), 0)])  # 2i + 1 (the default) or 2i
def test_student_layer_i_is_teacher_layer_2i_or_2i_plus_1(teacher_folder, keep, offset):
    teacher = tiny_bert(num_layers=4, seed=3)
    student = pruned_student(teacher_folder, keep)
    assert student.config.num_hidden_layers == 2 == len(student.bert.encoder.layer)
    for i in range(2):
        assert_same_layer(student.bert.encoder.layer[i], teacher.bert.encoder.layer[2 * i + offset])
        # and not the other candidate: the layers of a random model differ
        assert not torch.equal(student.bert.encoder.layer[i].output.dense.weight,
                               teacher.bert.encoder.layer[2 * i + 1 - offset].output.dense.weight)


def test_embeddings_pooler_and_head_are_copied(teacher_folder):
    teacher, student = tiny_bert(num_layers=4, seed=3), pruned_student(teacher_folder)
    for part in ("bert.embeddings", "bert.pooler", "classifier"):
        assert_same_layer(student.get_submodule(part), teacher.get_submodule(part))
    assert student.config.id2label == teacher.config.id2label and student.config.label2id == teacher.config.label2id


def test_default_keeps_alternate_layers_ending_at_the_last(teacher_folder):
    assert alternate_layers(6) == (1, 3, 5) and alternate_layers(4) == (1, 3) and alternate_layers(3) == (0, 2)
    student = pruned_student(teacher_folder)
    assert student.config.pruned_from == {"teacher": str(teacher_folder), "teacher_layers": 4, "keep_layers": [1, 3]}


def test_the_student_saves_and_loads_as_an_ordinary_model(teacher_folder, tmp_path):
    from transformers import AutoModelForSequenceClassification
    student = pruned_student(teacher_folder)
    student.save_pretrained(tmp_path / "student")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student").eval()
    inputs = {"input_ids": torch.tensor([[101, 2073, 2003, 2026, 102]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs).logits, student(**inputs).logits, atol=1e-6)
    assert loaded.config.num_hidden_layers == 2 and loaded.config.pruned_from["keep_layers"] == [1, 3]


def test_prune_layers_renumbers_and_keeps_everything_else():
    state = {"bert.encoder.layer.0.attention.self.query.weight": 0, "bert.encoder.layer.2.output.dense.bias": 2,
             "bert.encoder.layer.10.output.dense.bias": 10, "bert.embeddings.LayerNorm.weight": "E", "classifier.bias": "b"}
    assert prune_layers(state, (2, 10)) == {"bert.encoder.layer.0.output.dense.bias": 2, "bert.encoder.layer.1.output.dense.bias": 10,
                                            "bert.embeddings.LayerNorm.weight": "E", "classifier.bias": "b"}


@pytest.mark.parametrize("keep", [(), (0, 1, 2, 3), (3, 1), (1, 1), (1, 4), (-1, 2)])
def test_bad_layer_choices_are_refused_with_a_fix(teacher_folder, keep):
    with pytest.raises(ConfigError, match="does not choose a smaller set") as error:
        pruned_student(teacher_folder, keep)
    assert "[1, 3]" in error.value.fix


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(AinativeError, match="No model"):
        pruned_student(tmp_path)


def teacher_with_silent_units(folder, silent: range):
    "A tiny 4-layer teacher saved in `folder` whose feed-forward units `silent` write nothing (zero output columns) in every layer."
    teacher = tiny_bert(num_layers=4, seed=5)
    with torch.no_grad():
        for layer in teacher.bert.encoder.layer: layer.output.dense.weight[:, list(silent)] = 0
    teacher.save_pretrained(folder)
    return folder


def test_narrowing_drops_the_units_that_write_nothing_and_keeps_the_function(tmp_path):
    folder = teacher_with_silent_units(tmp_path / "teacher", range(10, 34))  # 24 of 64 units
    wide, narrow = pruned_student(folder, (1, 3)), pruned_student(folder, (1, 3), ffn_units=40)
    kept = [unit for unit in range(64) if unit not in range(10, 34)]
    for i in range(2):
        assert torch.equal(narrow.bert.encoder.layer[i].intermediate.dense.weight, wide.bert.encoder.layer[i].intermediate.dense.weight[kept])
        assert torch.equal(narrow.bert.encoder.layer[i].output.dense.weight, wide.bert.encoder.layer[i].output.dense.weight[:, kept])
    inputs = {"input_ids": torch.tensor([[101, 2073, 2003, 2026, 102]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        assert torch.allclose(narrow(**inputs).logits, wide(**inputs).logits, atol=1e-5)
    assert narrow.config.intermediate_size == 40
    assert narrow.config.pruned_from == {"teacher": str(folder), "teacher_layers": 4, "keep_layers": [1, 3],
                                         "ffn_units": 40, "teacher_ffn_units": 64}


def test_narrowing_past_the_silent_units_changes_the_function(tmp_path):
    folder = teacher_with_silent_units(tmp_path / "teacher", range(10, 34))
    inputs = {"input_ids": torch.tensor([[101, 2073, 2003, 2026, 102]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        assert not torch.allclose(pruned_student(folder, (1, 3), ffn_units=30)(**inputs).logits,
                                  pruned_student(folder, (1, 3))(**inputs).logits, atol=1e-5)


def test_a_narrow_student_saves_and_loads_with_its_width(teacher_folder, tmp_path):
    from transformers import AutoModelForSequenceClassification
    pruned_student(teacher_folder, ffn_units=16).save_pretrained(tmp_path / "student")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    assert loaded.config.intermediate_size == 16 and loaded.bert.encoder.layer[0].intermediate.dense.weight.shape == (16, 32)


@pytest.mark.parametrize("units", [0, -3, 65])
def test_bad_unit_counts_are_refused_with_a_fix(teacher_folder, units):
    with pytest.raises(ConfigError, match="not a number of the teacher's 64 feed-forward units") as error:
        pruned_student(teacher_folder, ffn_units=units)
    assert "1..64" in error.value.fix


def test_ffn_units_comes_through_the_command_line_parameters(tmp_path):
    from ainative.cli import build_parser, distill_params
    from ainative.distill import DistillationConfig
    args = build_parser().parse_args(["distill", str(tmp_path), "-p", "ffn_units=1024", "-p", "keep_layers=1,3,5"])
    config = DistillationConfig.from_params(distill_params(args))
    assert config.ffn_units == 1024 and config.keep_layers == (1, 3, 5)
