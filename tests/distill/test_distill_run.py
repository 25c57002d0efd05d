"""A real distillation on a tiny BERT: the batches carry each example's index, so the teacher logits line up; the run
writes a loadable model, metrics and training parameters that the registry takes unchanged; faults are refused clearly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ainative.distill as distill
from ainative.core import AinativeError, ConfigError, RunDir
from ainative.distill import DistillationConfig, DistillationTrainer, distill_model, with_example_index
from ainative.training import TrainingConfig

QUICK = {"epochs": 2, "batch_size": 8, "max_length": 16, "learning_rate": 1e-2, "logging_steps": 1000, "early_stopping_patience": 10}


@pytest.fixture(scope="module")
def checked_batches():
    return []


@pytest.fixture(scope="module")
def distilled(teacher_run, tmp_path_factory, checked_batches):
    """A pruned student distilled from the tiny teacher; every training batch is checked against the teacher itself:
    the cached rows the loss looks up must be the teacher's logits of the very texts in the batch."""
    from transformers import AutoModelForSequenceClassification
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_run / "model").eval()
    original = DistillationTrainer.compute_loss

    def checking(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            index = inputs["index"].cpu()
            with torch.no_grad():
                fresh = teacher(input_ids=inputs["input_ids"].cpu(), attention_mask=inputs["attention_mask"].cpu()).logits
            assert torch.allclose(self.teacher_logits[index], fresh, atol=1e-4), index.tolist()
            for row, i in enumerate(index.tolist()):
                tokens = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
                assert tokens == self.train_dataset[i]["input_ids"]
            checked_batches.append(index.tolist())
        return original(self, model, inputs, return_outputs, num_items_in_batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DistillationTrainer, "compute_loss", checking)
        run_dir = tmp_path_factory.mktemp("student") / "run"
        return distill_model(DistillationConfig(run_dir=str(run_dir), teachers=(str(teacher_run),), data_from=str(teacher_run), **QUICK))


def test_every_batch_looked_up_the_teacher_rows_of_its_own_examples(distilled, checked_batches):
    train_size = json.loads((distilled.run.data / "manifest.json").read_text())["counts"]["train"]
    steps_per_epoch = -(-train_size // QUICK["batch_size"])
    assert len(checked_batches) == 2 * steps_per_epoch  # two epochs, every batch checked
    first_epoch = sorted(i for batch in checked_batches[:steps_per_epoch] for i in batch)
    assert first_epoch == list(range(train_size))        # each example once an epoch
    assert checked_batches[0] != sorted(checked_batches[0]) or checked_batches[1][0] != checked_batches[0][-1] + 1  # shuffled


def test_the_run_holds_a_loadable_half_depth_model_and_training_metrics(distilled, teacher_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    run = distilled.run
    model = AutoModelForSequenceClassification.from_pretrained(run.model)
    AutoTokenizer.from_pretrained(run.model)
    assert model.config.num_hidden_layers == 2 and model.config.pruned_from["keep_layers"] == [1, 3]
    assert not (run.model / "training_args.bin").exists() and not (run.path / "checkpoints").exists()
    metrics = json.loads((run.reports / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert 0 <= metrics[split]["accuracy"] <= 1 and "macro_f1" in metrics[split]
    assert metrics["distillation"]["layers"] == 2 and metrics["distillation"]["alpha"] == DistillationConfig.alpha
    assert metrics["data_version"] == json.loads((teacher_run / "data" / "manifest.json").read_text())["version"]
    assert (run.reports / "training_curves.png").is_file() and (run.reports / "log_history.csv").is_file()
    train_size = json.loads((run.data / "manifest.json").read_text())["counts"]["train"]
    assert np.load(run.path / "teacher" / "teacher_logits.npy").shape == (train_size, 3)


def test_recorded_parameters_read_back_as_training_and_distillation_configs(distilled, teacher_run):
    params = distilled.run.read_params()
    training = TrainingConfig.from_params(params["training"])  # what the registry and the flywheel read
    assert training.base_model == str(teacher_run / "model") and training.epochs == QUICK["epochs"]
    assert DistillationConfig.from_params(params["distillation"]).teachers == (str(teacher_run),)


def test_the_registry_and_the_optimisation_stage_take_the_student_run_unchanged(distilled, tmp_path):
    from ainative.optimize import OptimizationConfig, optimize_model
    from ainative.registry import Registry, RegistryConfig, register_model
    registered = register_model(RegistryConfig(run_dir=str(distilled.run.path), registry_dir=str(tmp_path / "registry"), promote_to=None))
    registry = Registry(tmp_path / "registry")
    version = registry.resolve(registered.name, registered.version)
    assert (version / "model" / "config.json").is_file() and not registry.verify(registered.name, version.name)
    report = optimize_model(OptimizationConfig(run_dir=str(distilled.run.path), bench_seconds=0.05, batch_sizes=(1, 8),
                                               max_int8_drop=1.0, promote_to=None)).report
    assert report["source"]["version"] == registered.version and report["parity"]["onnx fp32"]["agreement"] >= 0.999
    assert "onnx" in registry.attachments(registered.name, registered.version)
    assert (distilled.run.onnx / "model.int8.onnx").is_file()


def test_a_second_student_in_the_run_reuses_the_teacher_logits(distilled, teacher_run, monkeypatch):
    monkeypatch.setattr(distill, "ensemble_logits", lambda *a, **k: pytest.fail("teacher logits computed again"))
    again = distill_model(DistillationConfig(run_dir=str(distilled.run.path), teachers=(str(teacher_run),),
                                             temperature=4.0, seed=1, **{**QUICK, "epochs": 1}))
    assert again.metrics["distillation"]["temperature"] == 4.0


def test_a_training_batch_without_its_index_is_an_error_not_a_silent_fallback(teacher_run, tmp_path):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments
    from ainative.model import padding_collator
    tokenizer = AutoTokenizer.from_pretrained(teacher_run / "model")
    encoded = tokenizer(["cancel my order", "where is my parcel"])
    dataset = with_example_index(datasets.Dataset.from_dict({**encoded, "labels": [0, 1]}))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to="none", use_cpu=True,
                             save_strategy="no")  # remove_unused_columns left True: the Trainer drops `index`
    trainer = DistillationTrainer(model=AutoModelForSequenceClassification.from_pretrained(teacher_run / "model"), args=args,
                                  train_dataset=dataset, data_collator=padding_collator(tokenizer), teacher_logits=np.zeros((2, 3)))
    with pytest.raises(AinativeError, match="without the examples' index"):
        trainer.train()


def test_teacher_logits_of_another_size_are_refused(teacher_run, tmp_path):
    import datasets
    from transformers import AutoModelForSequenceClassification, TrainingArguments
    dataset = with_example_index(datasets.Dataset.from_dict({"input_ids": [[101, 102]] * 3, "labels": [0, 1, 2]}))
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(AinativeError, match="2 rows of teacher logits for 3 train examples"):
        DistillationTrainer(model=AutoModelForSequenceClassification.from_pretrained(teacher_run / "model"), args=args,
                            train_dataset=dataset, teacher_logits=np.zeros((2, 3)))


def test_no_teacher_and_bad_data_from_are_refused(tmp_path, teacher_run):
    with pytest.raises(ConfigError, match="at least one teacher"):
        distill_model(DistillationConfig(run_dir=str(tmp_path / "a")))
    with pytest.raises(AinativeError, match="holds no prepared data"):
        distill_model(DistillationConfig(run_dir=str(tmp_path / "b"), teachers=(str(teacher_run),), data_from=str(tmp_path)))


def test_an_ensemble_distilled_into_a_fresh_base_model(teacher_run, tmp_path):
    "The issue's quality route: the mean logits of several teachers into a new model of the base's size."
    from distill_fixtures import save_tiny_bert
    from transformers import AutoModelForSequenceClassification
    base = save_tiny_bert(tmp_path / "base", num_layers=3, seed=5)
    other_teacher = save_tiny_bert(tmp_path / "other-teacher", num_layers=2, seed=6)
    result = distill_model(DistillationConfig(run_dir=str(tmp_path / "run"), teachers=(str(teacher_run), str(other_teacher)),
                                              data_from=str(teacher_run), student="base", base_model=str(base),
                                              head_lr_multiplier=10.0, **{**QUICK, "epochs": 1}))
    assert [t["path"] for t in result.metrics["distillation"]["teachers"]] == [str(teacher_run / "model"), str(other_teacher)]
    assert result.metrics["distillation"]["layers"] == 3 and result.metrics["distillation"]["pruned_from"] is None
    assert AutoModelForSequenceClassification.from_pretrained(result.run.model).config.num_hidden_layers == 3
    assert TrainingConfig.from_params(result.run.read_params()["training"]).base_model == str(base)
