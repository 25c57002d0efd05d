"""deploy/kubernetes/: every manifest validates against the Kubernetes schemas (offline, bundled with
kubernetes-validate), and the manifests agree with each other and with the server's contract."""
from __future__ import annotations

import copy
import re
import shutil
import socket
import subprocess
from decimal import Decimal
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from ainative.cli import build_parser, monitor_migrate_command

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
CONTAINER_PORT = 8000
SERVER_DRAIN_SECONDS = 30  # `ainative.api.serve` drains for up to 30 s on SIGTERM (timeout_graceful_shutdown)
KUBERNETES_VERSIONS = ["1.30.0", latest_version()]  # the oldest version we support, and the newest schemas we have
RESOURCE_FILES = sorted(path.name for path in MANIFESTS.glob("*.yaml") if path.name != "kustomization.yaml")


def load(name: str) -> list[dict]:
    "The documents of manifest `name`."
    return [document for document in yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")) if document]


def one(kind: str) -> dict:
    "The only resource of `kind` among the manifests."
    found = [document for name in RESOURCE_FILES for document in load(name) if document["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} resources"
    return found[0]


def quantity(value: str | int) -> Decimal:
    "A Kubernetes quantity (`500m`, `2`, `2Gi`, `512M`) as a number."
    suffixes = {"m": Decimal("0.001"), "": Decimal(1), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
                "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
                "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in suffixes, f"not a quantity: {value!r}"
    return Decimal(match.group(1)) * suffixes[match.group(2)]


def container_port(container: dict, port: str | int) -> int:
    "The number of `port`, a number or the name of one of `container`'s ports."
    if isinstance(port, int): return port
    numbers = [entry["containerPort"] for entry in container["ports"] if entry.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    return numbers[0]


@pytest.fixture(scope="module")
def deployment() -> dict:
    return one("Deployment")


@pytest.fixture(scope="module")
def pod(deployment) -> dict:
    return deployment["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def server(pod) -> dict:
    "The server container."
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


@pytest.fixture
def no_network(monkeypatch):
    "Any attempt to open a connection fails the test: the schemas must come from the package."
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- schema validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", RESOURCE_FILES)
def test_manifest_validates_against_the_kubernetes_schema(name, version, no_network):
    documents = load(name)
    assert documents, f"{name} holds no resource"
    for document in documents:
        # strict: unknown fields (a typo such as `paht:`) are errors too. A kind without a schema raises too.
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{name}: {document['kind']} is invalid for Kubernetes {version} at {where}: {error.message}",
                        pytrace=False)


@pytest.mark.parametrize("break_it, message", [
    pytest.param(lambda spec: spec["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(paht="/ready"),
                 "'paht' was unexpected", id="misspelt-field"),
    pytest.param(lambda spec: spec["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="8000"),
                 "'8000' is not of type 'integer'", id="port-as-string"),
    pytest.param(lambda spec: spec.update(replicas="two"), "'two' is not of type 'integer'", id="wrong-type"),
    pytest.param(lambda spec: spec.pop("selector"), "'selector' is a required property", id="missing-field"),
])
def test_validator_rejects_a_broken_deployment(deployment, break_it, message, no_network):
    "The validation above is not vacuous: typical mistakes fail it."
    broken = copy.deepcopy(deployment)
    break_it(broken["spec"])
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


# --- the manifests agree with each other and with the server ------------------------------------------

def test_kustomization_lists_every_manifest_but_the_example_secret():
    kustomization = load("kustomization.yaml")[0]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    examples = {name for name in RESOURCE_FILES if name.endswith(".example.yaml")}
    assert examples == {"secret.example.yaml"}
    assert set(listed) == set(RESOURCE_FILES) - examples, "kustomization.yaml and the folder disagree"


def test_probes_hit_ready_and_health_on_the_container_port(server):
    assert [entry["containerPort"] for entry in server["ports"]] == [CONTAINER_PORT]
    readiness, liveness = server["readinessProbe"], server["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/ready"
    assert liveness["httpGet"]["path"] == "/health"
    for probe in (readiness, liveness):
        assert container_port(server, probe["httpGet"]["port"]) == CONTAINER_PORT
        assert probe["timeoutSeconds"] < probe["periodSeconds"]
    assert readiness["initialDelaySeconds"] <= 5, "the server is ready within about 5 s"
    # A busy replica leaves the Service (readiness) long before it would be restarted (liveness).
    assert (liveness["initialDelaySeconds"] + liveness["periodSeconds"] * liveness["failureThreshold"]
            > readiness["periodSeconds"] * readiness["failureThreshold"] * 2)


def test_container_serves_on_all_interfaces_at_its_port(server):
    command = server.get("command", []) + server.get("args", [])
    assert command[:2] == ["ainative", "serve"], command
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert int(command[command.index("--port") + 1]) == CONTAINER_PORT
    assert "--model" not in command and "--alias" not in command, "flags would override the ConfigMap"


def test_image_is_tagged_and_set_by_kustomize(server):
    image = server["image"]
    name, _, tag = image.rpartition(":")
    assert tag and tag != "latest" and "/" not in tag, image
    images = load("kustomization.yaml")[0]["images"]
    assert [entry["name"] for entry in images] == [name]
    assert images[0]["newTag"] != "latest"


def test_service_targets_the_server_port(deployment, server):
    service = one("Service")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert container_port(server, port["targetPort"]) == CONTAINER_PORT
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items(), "the Service selects no server pod"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_hpa_scales_the_deployment_on_cpu(deployment, server):
    hpa = one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment",
                                                                    deployment["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert "cpu" in server["resources"]["requests"], "CPU utilisation is measured against the request"


def test_resources_limits_cover_requests(server):
    requests, limits = server["resources"]["requests"], server["resources"]["limits"]
    assert set(requests) == set(limits) == {"cpu", "memory"}
    for resource in requests:
        assert quantity(limits[resource]) >= quantity(requests[resource]), resource
    assert quantity(requests["cpu"]) == 2
    assert 1.5 * 2**30 <= quantity(limits["memory"]) <= 4 * 2**30


def test_configmap_holds_server_settings_that_fit_the_container(server, server_environment):
    configmap = one("ConfigMap")
    assert [source["configMapRef"]["name"] for source in server["envFrom"]] == [configmap["metadata"]["name"]]
    settings = configmap["data"]
    assert all(isinstance(value, str) for value in settings.values()), "ConfigMap values must be strings"
    unknown = {name for name in settings if name.startswith("AINATIVE_")} - server_environment
    assert not unknown, f"the server reads no such variables: {unknown}"
    assert "AINATIVE_ADMIN_TOKEN" not in settings, "the admin token belongs in a Secret"
    cpus = quantity(server["resources"]["limits"]["cpu"])
    assert quantity(settings["OMP_NUM_THREADS"]) == quantity(settings["AINATIVE_THREADS"]) == cpus
    assert settings["HF_HUB_OFFLINE"] == "1"
    assert (settings["AINATIVE_MODEL"], settings["AINATIVE_ALIAS"]) == ("intent-classifier", "production")


def test_admin_token_comes_from_the_secret(server):
    secret = one("Secret")
    (key,) = secret["stringData"]
    literal = [entry["name"] for entry in server.get("env", []) if "value" in entry
               and re.search(r"TOKEN|SECRET|PASSWORD|KEY", entry["name"])]
    assert not literal, f"secrets given as literal values: {literal}"
    (token,) = [entry for entry in server["env"] if entry["name"] == "AINATIVE_ADMIN_TOKEN"]
    reference = token["valueFrom"]["secretKeyRef"]
    assert (reference["name"], reference["key"]) == (secret["metadata"]["name"], key)
    assert reference.get("optional") is True, "without the Secret the server runs with admin off"


def test_registry_is_mounted_read_only_from_the_claim(pod, server):
    claim = one("PersistentVolumeClaim")
    assert "ReadWriteMany" in claim["spec"]["accessModes"], "replicas on several nodes share it"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in server["volumeMounts"]}
    registry = mounts["/registry"]
    assert registry["readOnly"] is True
    source = volumes[registry["name"]]["persistentVolumeClaim"]
    assert source["claimName"] == claim["metadata"]["name"] and source["readOnly"] is True
    assert one("ConfigMap")["data"]["AINATIVE_REGISTRY_DIR"] == "/registry"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a writable /tmp under a read-only root"
    database = one("ConfigMap")["data"].get("AINATIVE_DATABASE_URL", "")
    if database.startswith("sqlite:"):  # the request log must be writable: not under the read-only registry or root
        folder = str(Path(database.removeprefix("sqlite:///")).parent)
        assert folder in mounts and not mounts[folder].get("readOnly"), f"the request log's folder {folder} is not a writable mount"


def test_pod_is_locked_down(pod, server):
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = server["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_rollouts_and_shutdowns_drop_no_request(deployment, pod, server):
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0
    command = server["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + SERVER_DRAIN_SECONDS


def test_prometheus_scrapes_the_metrics_endpoint(deployment, server):
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert container_port(server, int(annotations["prometheus.io/port"])) == CONTAINER_PORT
    assert int(annotations["prometheus.io/port"]) in [entry["containerPort"] for entry in server["ports"]]
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_renders_valid_resources(no_network):
    "`kubectl kustomize` (what `kubectl apply -k` runs first, offline) renders every listed resource, validly."
    rendered = subprocess.run(["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    expected = {(document["kind"], document["metadata"]["name"]) for name in load("kustomization.yaml")[0]["resources"]
                for document in load(name)}
    assert {(document["kind"], document["metadata"]["name"]) for document in documents} == expected
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


def test_an_init_container_migrates_the_request_log_before_the_server_starts(pod, server):
    "`ainative monitor migrate` with the server's image, settings and database folder, locked down as the server is."
    (migrate,) = pod["initContainers"]
    assert migrate["args"] == ["ainative", "monitor", "migrate"] and migrate["image"] == server["image"]
    assert migrate["envFrom"] == server["envFrom"], "the same AINATIVE_DATABASE_URL as the server"
    assert {m["mountPath"]: m for m in migrate["volumeMounts"]} == {m["mountPath"]: m for m in server["volumeMounts"]}
    assert migrate["securityContext"] == server["securityContext"]
    parser = build_parser()
    args = parser.parse_args(migrate["args"][1:])
    assert args.handler is monitor_migrate_command
