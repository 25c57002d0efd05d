"""deploy/kubernetes/predict-job.yaml: the Indexed Job that scores one file in shards validates against the Kubernetes
schemas (offline), runs a command line the `ainative predict` parser accepts with one shard per index, and agrees with
the server's manifests (same image, settings, security context and registry claim)."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from ainative.batch import PredictConfig, parse_shard
from ainative.cli import build_parser, predict_command

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.30.0", latest_version()]


def load(name: str) -> list[dict]:
    return [document for document in yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")) if document]


@pytest.fixture(scope="module")
def job() -> dict:
    (document,) = load("predict-job.yaml")
    assert document["kind"] == "Job"
    return document


@pytest.fixture(scope="module")
def pod(job) -> dict:
    return job["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (only,) = pod["containers"]
    return only


@pytest.fixture(scope="module")
def server_pod() -> dict:
    (deployment,) = load("deployment.yaml")
    return deployment["spec"]["template"]["spec"]


def expand(argument: str, index: int) -> str:
    "`argument` as the kubelet expands it in pod `index`: $(JOB_COMPLETION_INDEX) replaced by the index."
    return argument.replace("$(JOB_COMPLETION_INDEX)", str(index))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_job_validates_against_the_kubernetes_schema(job, version):
    kubernetes_validate.validate(job, version, strict=True)


@pytest.mark.parametrize("break_it, message", [
    pytest.param(lambda spec: spec.update(completionMod="Indexed"), "'completionMod' was unexpected", id="misspelt-field"),
    pytest.param(lambda spec: spec.update(parallelism="four"), "'four' is not of type 'integer'", id="wrong-type"),
    pytest.param(lambda spec: spec.pop("template"), "'template' is a required property", id="missing-field"),
])
def test_validator_rejects_a_broken_job(job, break_it, message):
    "The validation above is not vacuous: typical mistakes fail it."
    broken = copy.deepcopy(job)
    break_it(broken["spec"])
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_an_indexed_job_with_one_pod_per_shard(job):
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["suspend"] is True, "`kubectl apply -k` of the stack must not start a scoring run"


def test_each_index_scores_its_own_shard_into_its_own_part(job, container):
    "Expanded as in pod i, the command is `ainative predict` of shard i/N into part i, and the N shards cover the file."
    program, *arguments = container["args"]
    assert program == "ainative" and arguments[0] == "predict"
    count = job["spec"]["completions"]
    outputs = set()
    for index in range(count):
        args = build_parser().parse_args([expand(argument, index) for argument in arguments])
        assert args.handler is predict_command
        assert parse_shard(args.shard) == (index, count), "the N of --shard must be the Job's completions"
        assert PredictConfig(input=args.input, output=args.output, shard=args.shard).shard == f"{index}/{count}"
        assert args.input.startswith("/data/") and args.output.startswith("/data/out/")
        outputs.add(args.output)
    assert len(outputs) == count, "each pod writes its own part"
    assert "--model" not in arguments and "--alias" not in arguments, "the model is the servers': from the ConfigMap"


def test_the_index_variable_is_declared_so_that_it_expands(container):
    "$(VAR) in args expands only from the container's environment: JOB_COMPLETION_INDEX comes from the pod's annotation."
    used = set(re.findall(r"\$\((\w+)\)", " ".join(container["args"])))
    declared = {entry["name"]: entry for entry in container["env"]}
    assert used == {"JOB_COMPLETION_INDEX"} and used <= set(declared)
    field_path = declared["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_same_image_settings_and_registry_as_the_servers(pod, container, server_pod):
    server = server_pod["containers"][0]
    assert container["image"] == server["image"] and container["envFrom"] == server["envFrom"]
    (configmap,) = load("configmap.yaml")
    assert configmap["data"]["AINATIVE_REGISTRY_DIR"] == "/registry"
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    server_claims = {volume["persistentVolumeClaim"]["claimName"] for volume in server_pod["volumes"] if "persistentVolumeClaim" in volume}
    assert mounts["/registry"]["readOnly"] is True, "scoring never writes into the registry"
    assert volumes[mounts["/registry"]["name"]]["persistentVolumeClaim"]["claimName"] in server_claims
    data = mounts["/data"]
    assert not data.get("readOnly") and data.get("subPath"), "the parts are written beside the input, not into the registry"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a writable /tmp under a read-only root"


def test_pod_is_locked_down_as_the_servers_are(pod, container, server_pod):
    assert pod["automountServiceAccountToken"] is False
    for key in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"):
        assert pod["securityContext"][key] == server_pod["securityContext"][key], key
    assert container["securityContext"] == server_pod["containers"][0]["securityContext"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) == set(limits) == {"cpu", "memory"}


def test_the_kustomization_lists_it():
    assert "predict-job.yaml" in load("kustomization.yaml")[0]["resources"]
