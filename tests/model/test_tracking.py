"Tracking: local logs always; wandb in offline mode with no login and no network."
import json


def test_wandb_offline_records_parameters_data_version_and_metrics(tmp_path, monkeypatch):
    from ainative.training import TrainingConfig, train_model
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    result = train_model(TrainingConfig(run_dir=str(tmp_path / "run"), epochs=1, baseline=False, tracking="wandb"))
    offline_runs = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    recorded = offline_runs[0].read_bytes()
    assert result.metrics["data_version"].encode() in recorded  # the data version went to the tracker
    assert b"test/accuracy" in recorded and b"learning_rate" in recorded
    local = [json.loads(line) for line in (tmp_path / "run" / "reports" / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_macro_f1" in entry for entry in local) and any("loss" in entry for entry in local)
