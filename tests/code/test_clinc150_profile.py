"""The clinc150 profile: CLINC150 with the full profile's training, its own model name, and the oos handling as -p."""
from __future__ import annotations

from ainative.pipeline import CLINC150_MODEL_NAME, PROFILES, STAGES, stage_parameters
from ainative.registry import RegistryConfig


def test_clinc150_profile_trains_on_clinc150_under_its_own_name():
    parameters = stage_parameters("clinc150")
    assert parameters["data"] == {"dataset": "clinc150"}
    assert parameters["training"]["learning_rate"] == PROFILES["full"]["training"]["learning_rate"]
    assert CLINC150_MODEL_NAME != RegistryConfig.model_name
    assert all(parameters[stage]["model_name"] == CLINC150_MODEL_NAME
               for stage in ("registry", "optimization", "explainability", "abstention"))


def test_out_of_scope_handling_reaches_only_the_data_stage():
    parameters = stage_parameters("clinc150", {"out_of_scope": "holdout"})
    assert parameters["data"]["out_of_scope"] == "holdout"
    assert [stage for stage in STAGES if "out_of_scope" in parameters[stage]] == ["data"]


def test_abstention_runs_last_and_full_profile_keeps_its_defaults():
    assert list(STAGES)[-1] == "abstention" and list(STAGES).index("abstention") > list(STAGES).index("explainability")
    assert PROFILES["full"]["abstention"] == {} and PROFILES["full"]["data"] == {"dataset": "banking77"}
