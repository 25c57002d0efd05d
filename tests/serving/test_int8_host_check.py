"""The server checks an INT8 variant on its own CPU before serving it: the version's probes (onnx/probes.json, written
by the optimisation stage) are answered with the session about to serve, and judged against fp32's stored answers.
A version whose probes INT8 answers worse here serves fp32 (fallback) or is refused (refuse); one without probes
serves as before. The failing versions are the demo run registered again with its probes relabelled so that fp32
was right on every probe and this host's INT8 is right on none."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ainative.registry import Registry
from ainative.families import RuntimeOptions
from ainative.serving import open_version, probe_answers
from live_server import MODEL, ServerProcess, copy_demo, scrape, wait_until

INT8 = {"AINATIVE_VARIANT": "model.int8.onnx", "AINATIVE_RELOAD_INTERVAL_S": "0.5"}
LOAD_TIMEOUT_S = 90  # verify the files, open INT8, answer the probes, then open and verify fp32: on a busy 2-core machine


def register_with_probes(registry: Registry, run: Path, probes: dict | None) -> str:
    "Register `run` again with `probes` as its onnx/probes.json (None: without one); the run's own file is restored after."
    path = run / "onnx" / "probes.json"
    original = path.read_bytes()
    if probes is None: path.unlink()
    else: path.write_text(json.dumps(probes), encoding="utf-8")
    try: return registry.register(run)
    finally: path.write_bytes(original)


@pytest.fixture(scope="module")
def folder(demo_folder, module_tmp_path) -> Path:
    return copy_demo(demo_folder, module_tmp_path / "demo")


@pytest.fixture(scope="module")
def versions(folder) -> dict[str, str]:
    "Two new versions of the demo run: INT8 answers none of its probes right here (fp32 all), and one without probes."
    registry = Registry(folder / "registry")
    int8 = open_version(registry, MODEL, "production", RuntimeOptions(variant="model.int8.onnx", device="cpu"))
    stored = json.loads((folder / "run" / "onnx" / "probes.json").read_text(encoding="utf-8"))
    labels = ((probe_answers(int8, stored["texts"]) + 1) % len(int8.labels)).tolist()
    relabelled = {**stored, "labels": labels, "answers": {**stored["answers"], stored["reference"]: labels}, "margin": 0.05}
    return {"failing": register_with_probes(registry, folder / "run", relabelled),
            "unprobed": register_with_probes(registry, folder / "run", None)}


def host_checks(client: httpx.Client) -> dict[str, float]:
    "ainative_int8_host_checks_total by outcome."
    return {s.labels["outcome"]: s.value for s in scrape(client)["ainative_int8_host_checks"] if s.name.endswith("_total")}


def fallback_gauge(client: httpx.Client) -> float:
    return scrape(client)["ainative_int8_fallback"][0].value


def probe_count(folder: Path) -> int:
    "How many probes the demo run stored."
    return len(json.loads((folder / "run" / "onnx" / "probes.json").read_text(encoding="utf-8"))["labels"])


def test_the_probes_are_stored_with_the_version_and_verified(demo_registry_dir):
    registry = Registry(demo_registry_dir)
    folder = registry.resolve(MODEL, "production")
    probes = json.loads((folder / "onnx" / "probes.json").read_text(encoding="utf-8"))
    assert "probes.json" in registry.attachments(MODEL, "production")["onnx"]["files"]  # hashed with the attachment
    assert registry.verify(MODEL, folder.name) == []
    report = json.loads((folder / "onnx" / "report.json").read_text(encoding="utf-8"))
    assert len(probes["texts"]) == len(probes["labels"]) == report["probes"]["texts"] > 0
    assert set(probes["answers"]) == set(report["files"].values()) and probes["reference"] == report["files"]["onnx fp32"]
    assert set(probes["cpu"]) == {"model", "machine", "cores", "vector_flags"} == set(report["cpu"])
    assert (probes["margin"], probes["alpha"], probes["undecided"]) == (0.999, 0.05, "pool")  # demo: max_int8_drop=1


def test_int8_that_fails_its_probes_here_falls_back_to_fp32_and_stays_ready(start_server, folder, versions):
    failing = versions["failing"]
    server = start_server(folder / "registry", env={**INT8, "AINATIVE_ALIAS": failing})
    with server.client() as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["model_version"] == failing
        check = ready.json()["int8_host_check"]
        assert check["outcome"] == "worse" and check["fell_back"] is True and check["version"] == failing
        assert (check["variant_asked"], check["variant_served"]) == ("model.int8.onnx", "model.onnx")
        assert check["reason"].startswith("worse by more than the margin: 0.00% vs 100.00%")
        assert check["host_cpu"] and check["gate_cpu"] and check["decision"]["n"] == probe_count(folder)
        model = client.get("/model").json()
        assert model["variant"] == "model.onnx" and model["int8_host_check"] == check
        answer = client.post("/predict", json={"text": "where is my parcel?"})
        assert answer.status_code == 200 and answer.json()["model_version"] == failing
        assert host_checks(client)["worse"] == 1 and fallback_gauge(client) == 1
    assert server.stderr().count("INT8 host check of") == 1  # logged once per load



def test_refuse_leaves_the_version_unserved_and_ready_says_why(folder, versions, tmp_path):
    failing = versions["failing"]
    server = ServerProcess(folder / "registry", tmp_path, {**INT8, "AINATIVE_ALIAS": failing, "AINATIVE_INT8_HOST_CHECK": "refuse"})
    try:
        server.start()
        with server.client() as client:
            def refused():
                try: answer = client.get("/ready")
                except httpx.TransportError: return None
                return answer if "HostCheckRefused" in answer.text else None
            ready = wait_until(refused, LOAD_TIMEOUT_S, "the refusal in /ready")
            assert ready.status_code == 503 and ready.json()["model_version"] is None
            assert any(reason.startswith("no model loaded yet: HostCheckRefused: model.int8.onnx is not served on this host")
                       for reason in ready.json()["reasons"])
            check = ready.json()["int8_host_check"]
            assert check["outcome"] == "worse" and check["variant_served"] is None and check["version"] == failing
            assert client.post("/predict", json={"text": "refund please"}).status_code == 503
            model = client.get("/model").json()
            assert model["failed_version"] == failing and model["int8_host_check"] == check
            assert host_checks(client)["worse"] == 1 and fallback_gauge(client) == 0
    finally:
        server.stop()


def test_off_serves_int8_unchecked(start_server, folder, versions):
    server = start_server(folder / "registry", env={**INT8, "AINATIVE_ALIAS": versions["failing"], "AINATIVE_INT8_HOST_CHECK": "off"})
    with server.client() as client:
        check = client.get("/ready").json()["int8_host_check"]
        assert check["outcome"] == "off" and check["variant_served"] == "model.int8.onnx"
        assert client.get("/model").json()["variant"] == "model.int8.onnx" and host_checks(client)["off"] == 1


def test_a_version_without_probes_serves_int8_as_before(start_server, folder, versions):
    unprobed = versions["unprobed"]
    assert not (Registry(folder / "registry").resolve(MODEL, unprobed) / "onnx" / "probes.json").exists()
    server = start_server(folder / "registry", env={**INT8, "AINATIVE_ALIAS": unprobed})
    with server.client() as client:
        ready = client.get("/ready").json()
        assert ready["status"] == "ready" and ready["int8_host_check"]["outcome"] == "no probes"
        assert ready["int8_host_check"]["variant_served"] == "model.int8.onnx"
        assert client.post("/predict", json={"text": "refund please"}).json()["model_version"] == unprobed
        assert host_checks(client) == {"not worse": 0, "worse": 0, "undecided": 0, "no probes": 1, "off": 0}
        assert fallback_gauge(client) == 0


def test_the_demo_int8_passes_its_own_probes(default_server):
    "The session's version, checked on the host that optimised it: not worse (when INT8 is its served default)."
    with default_server.client() as client:
        model = client.get("/model").json()
        if model["variant"] == "model.int8.onnx":
            assert model["int8_host_check"]["outcome"] == "not worse" and not model["int8_host_check"]["fell_back"]
        else:
            assert model["int8_host_check"] is None  # fp32 serves: nothing to check


def test_a_changed_probe_file_fails_verification(folder, versions):
    "Last in the module: it damages the copy's production version, which no server here serves."
    registry = Registry(folder / "registry")
    path = registry.resolve(MODEL, "production") / "onnx" / "probes.json"
    path.chmod(0o644)
    path.write_text(path.read_text(encoding="utf-8").replace('"labels": [', '"labels": [0, '), encoding="utf-8")
    assert any("onnx/probes.json" in problem for problem in registry.verify(MODEL, path.parents[1].name))
