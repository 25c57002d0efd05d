"""deploy/kubernetes/flywheel-cronjob.yaml: the CronJob that runs a flywheel turn validates against the Kubernetes
schemas (offline), runs a command line the `ainative flywheel` parser accepts, and agrees with the server's manifests
(same image, same registry claim, the settings it reads exist)."""
from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from ainative.flywheel import FlywheelConfig, add_flywheel_command, flywheel_command

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.30.0", latest_version()]


def load(name: str) -> list[dict]:
    return [document for document in yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")) if document]


@pytest.fixture(scope="module")
def cronjob() -> dict:
    (document,) = load("flywheel-cronjob.yaml")
    assert document["kind"] == "CronJob"
    return document


@pytest.fixture(scope="module")
def pod(cronjob) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (only,) = pod["containers"]
    return only


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_cronjob_validates_against_the_kubernetes_schema(cronjob, version):
    kubernetes_validate.validate(cronjob, version, strict=True)


@pytest.mark.parametrize("break_it, message", [
    pytest.param(lambda spec: spec.update(concurencyPolicy="Forbid"), "'concurencyPolicy' was unexpected", id="misspelt-field"),
    pytest.param(lambda spec: spec.update(successfulJobsHistoryLimit="three"), "'three' is not of type 'integer'", id="wrong-type"),
    pytest.param(lambda spec: spec.pop("jobTemplate"), "'jobTemplate' is a required property", id="missing-field"),
])
def test_validator_rejects_a_broken_cronjob(cronjob, break_it, message):
    "The validation above is not vacuous: typical mistakes fail it."
    broken = copy.deepcopy(cronjob)
    break_it(broken["spec"])
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_command_is_a_flywheel_turn_the_cli_accepts(container):
    program, *arguments = container["args"]
    assert program == "ainative" and arguments[0] == "flywheel"
    parser = argparse.ArgumentParser(prog="ainative")
    add_flywheel_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(arguments)
    assert args.handler is flywheel_command and not args.check and not args.force
    assert args.promote_if == "significant", "the schedule promotes only on significant evidence"


def test_turns_never_overlap_and_a_failed_pod_is_not_restarted_in_place(cronjob, pod):
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["restartPolicy"] == "Never"
    assert len(cronjob["spec"]["schedule"].split()) == 5


def test_same_image_and_registry_claim_as_the_servers_and_the_registry_is_writable(pod, container):
    (deployment,) = load("deployment.yaml")
    server_pod = deployment["spec"]["template"]["spec"]
    assert container["image"] == server_pod["containers"][0]["image"]
    claims = {volume["name"]: volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"] if "persistentVolumeClaim" in volume}
    server_claims = {volume["persistentVolumeClaim"]["claimName"] for volume in server_pod["volumes"] if "persistentVolumeClaim" in volume}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    registry = mounts["/registry"]
    assert claims[registry["name"]] in server_claims
    assert not registry.get("readOnly"), "a turn registers, attaches and promotes: the registry must be writable"
    assert not any(volume.get("persistentVolumeClaim", {}).get("readOnly") for volume in pod["volumes"])
    (configmap,) = load("configmap.yaml")
    assert configmap["data"]["AINATIVE_REGISTRY_DIR"] == "/registry"
    assert [source["configMapRef"]["name"] for source in container["envFrom"]] == [configmap["metadata"]["name"]]


def test_every_setting_it_sets_is_one_ainative_reads(container):
    from ainative.core import WORKSPACE_VARIABLES
    from ainative.monitor import MonitorConfig
    read = {f"AINATIVE_{field.name.upper()}" for config in (FlywheelConfig, MonitorConfig) for field in dataclasses.fields(config)}
    read |= set(WORKSPACE_VARIABLES)
    names = {entry["name"] for entry in container["env"]}
    assert {name for name in names if name.startswith("AINATIVE_")} <= read
    writable = {mount["mountPath"] for mount in container["volumeMounts"]} - {"/registry"}
    for entry in container["env"]:
        if entry["name"] in WORKSPACE_VARIABLES:
            assert any(entry["value"].startswith(folder) for folder in writable), f"{entry['name']} is not on a writable volume"
    database = next(entry for entry in container["env"] if entry["name"] == "AINATIVE_DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"]["key"] == "AINATIVE_DATABASE_URL", "a database URL may hold a password"


def test_pod_is_locked_down(pod, container):
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) == set(limits) == {"cpu", "memory"}
