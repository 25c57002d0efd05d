"""deploy/monitoring: the Grafana dashboard and the Prometheus alert rules are well formed, every PromQL expression in them
parses, they cover what issue 12 asks for, and every metric they name is on a live server's /metrics."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import promql_parser as promql  # a dev requirement: the PromQL parser of the Rust crate behind GreptimeDB
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "alert-rules.yaml"
MODEL = "intent-classifier"
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}  # what Grafana puts in at query time
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "state-timeline", "text", "piechart"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"critical", "warning", "info"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def rules() -> list[dict]:
    "Every rule of the rules file, each with its group's name under `group`."
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [{**rule, "group": group["name"]} for group in document["groups"] for rule in group["rules"]]


def variables(board: dict) -> dict[str, str]:
    "A value for each dashboard variable, as PromQL sees it after Grafana's substitution (multi-value: the All regex)."
    values = dict(GRAFANA_BUILTINS)
    for variable in board["templating"]["list"]:
        if variable["type"] == "query": values[variable["name"]] = variable.get("allValue") or ".*"
        elif variable["type"] in ("textbox", "constant", "custom"): values[variable["name"]] = str(variable["query"]).split(",")[0]
        elif variable["type"] == "datasource": values[variable["name"]] = "prometheus"
    return values


def substituted(expr: str, values: dict[str, str]) -> str:
    "`expr` with $name and ${name} replaced as Grafana would; an undefined variable fails the test naming it."
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"{expr!r} uses ${name}, which the dashboard does not define"
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_exprs() -> list[tuple[str, str]]:
    "(where, PromQL) of every panel target and annotation query, variables substituted."
    board = dashboard()
    values = variables(board)
    found = [(f"panel {panel['id']} {panel['title']!r}", substituted(target["expr"], values))
             for panel in board["panels"] for target in panel.get("targets", [])]
    found += [(f"annotation {a['name']!r}", substituted(a["expr"], values)) for a in board["annotations"]["list"] if "expr" in a]
    return found


def parse(where: str, expr: str):
    try:
        return promql.parse(expr)
    except ValueError as error:
        pytest.fail(f"{where}: PromQL does not parse ({error}): {expr}")


def metric_names(expr: str) -> set[str]:
    "Names of the series `expr` selects, from its syntax tree."
    names: set[str] = set()
    def visit(node):
        if isinstance(node, promql.VectorSelector) and node.name: names.add(node.name)
    promql.walk(promql.parse(expr), visit)
    return names


def referenced_metrics() -> set[str]:
    "Every metric the two files name: selectors of their PromQL, plus any ainative_ name anywhere in them (variable queries, text)."
    names = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    names |= {name for rule in rules() for name in metric_names(rule["expr"])}
    for path in (DASHBOARD, RULES):
        names |= set(re.findall(r"\bainative_[a-z0-9_]*[a-z0-9]", path.read_text(encoding="utf-8")))
    return names


# --- the dashboard ---------------------------------------------------------------------------------------------------
def test_dashboard_has_what_grafana_needs_to_import_it():
    board = dashboard()
    assert board["title"] and board["uid"] and 36 <= board["schemaVersion"] <= 41
    templating = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert templating["datasource"]["type"] == "datasource" and templating["datasource"]["query"] == "prometheus"
    assert "id" not in board or board["id"] is None  # an id would clash with the importing Grafana's own
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids), f"panel ids not unique: {ids}"
    for panel in board["panels"]:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title") and panel.get("type") in PANEL_TYPES, where
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and all(isinstance(grid[k], int) for k in "hwxy"), where
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
        if panel["type"] == "row": continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"] and panel.get("description"), where
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: refIds {refs}"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"], where


def test_dashboard_panels_do_not_overlap():
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r} at x={x}, y={y}"
                cells[(x, y)] = panel["title"]


def test_every_dashboard_query_parses_as_promql():
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for where, expr in exprs: parse(where, expr)


def test_variable_queries_select_server_metrics():
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query": continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        found = re.fullmatch(r"label_values\((.+), *(\w+)\)", query)
        assert found and variable["definition"] == query, variable["name"]
        parse(f"variable {variable['name']}", substituted(found.group(1), variables(dashboard())))


def test_dashboard_shows_what_the_issue_asks_for():
    "Request rate, errors, latency quantiles, queue vs max, batches, top intents, confidence, drift, feedback, log, components, model."
    exprs = [expr for _, expr in dashboard_exprs()]
    def some(pattern: str) -> bool: return any(re.search(pattern, expr) for expr in exprs)
    assert some(r"sum by \(handler, code\) \(rate\(ainative_http_requests_total")
    assert some(r'code=~"5\.\."')
    for quantile in ("0.5", "0.95", "0.99"):
        assert some(rf"histogram_quantile\({quantile}, .*ainative_http_request_duration_seconds_bucket")
    assert some(r"ainative_queue_depth") and some(r"ainative_queue_capacity")
    assert some(r"ainative_batch_size_(sum|bucket)")
    assert some(r"topk\(10, .*ainative_answers_total")
    assert some(r"ainative_answer_confidence_bucket")
    assert some(r"ainative_drift_score") and some(r"ainative_drift_status")
    assert some(r"by \(version\) \(ainative_feedback_accuracy")
    assert some(r"ainative_request_log_rows_total") and some(r"ainative_request_log_write_failures_total")
    assert some(r"ainative_component_up") and some(r"ainative_component_restarts")
    assert some(r"ainative_model_info")
    board = dashboard()
    psi = next(p for p in board["panels"] if "ainative_drift_score" in json.dumps(p.get("targets", [])) and "label_psi" in json.dumps(p.get("targets", [])))
    assert [s["value"] for s in psi["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 0.1, 0.25]
    status = next(p for p in board["panels"] if "ainative_drift_status" in json.dumps(p.get("targets", [])))
    assert set(status["fieldConfig"]["defaults"]["mappings"][0]["options"]) == {"-1", "0", "1", "2"}


# --- the alert rules -------------------------------------------------------------------------------------------------
def test_rules_file_has_the_prometheus_structure():
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(document) == {"groups"} and document["groups"]
    group_names = [group["name"] for group in document["groups"]]
    assert len(group_names) == len(set(group_names))
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit", "query_offset", "labels"} and group["rules"], group["name"]
    alerts = [rule["alert"] for rule in rules()]
    assert len(alerts) == len(set(alerts)), alerts
    for rule in rules():
        where = rule["alert"]
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations", "group"}, where
        assert re.fullmatch(r"Ainative[A-Z][A-Za-z0-9]+", rule["alert"]), where
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), where
        assert DURATION.match(str(rule["for"])), f"{where}: for={rule['for']!r}"
        assert rule["labels"]["severity"] in SEVERITIES, where
        assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip(), where
        for text in rule["annotations"].values():
            assert text.count("{{") == text.count("}}"), f"{where}: unbalanced template in {text!r}"
        parse(where, rule["expr"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


A = {"job": "ainative", "instance": "a:8000"}  # a replica serving a model
B = {"job": "other", "instance": "b:8000"}     # a replica without one


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    "An input series of a promtool rule test: `metric{labels}` with values in promtool's expanding notation."
    return {"series": metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def alerts(name: str, at: str, *expected: dict[str, str]) -> dict:
    return {"eval_time": at, "alertname": name, "exp_alerts": [{"exp_labels": labels} for labels in expected]}


MODEL_INFO = {"name": MODEL, "version": "v0003", "variant": "model.int8.onnx", "provider": "CPUExecutionProvider"}
RULE_TESTS = [
    {"interval": "1m", "input_series": [  # drift statuses over 40 minutes
        series("ainative_drift_status", "0x5 2x40", **A, score="label_psi"),
        series("ainative_drift_status", "1x45", **A, score="embedding_auc"),
        series("ainative_drift_status", "-1x45", **A, score="length_ks"),
        series("ainative_model_info", "1x45", **A, **MODEL_INFO)],
     "alert_rule_test": [
        alerts("AinativeDriftAlert", "15m"),
        alerts("AinativeDriftAlert", "30m", {"severity": "critical", "job": "ainative", "score": "label_psi"}),
        alerts("AinativeDriftWarning", "30m", {"severity": "warning", "job": "ainative", "score": "embedding_auc"}),
        alerts("AinativeDriftNotEvaluated", "40m")]},
    {"interval": "1m", "input_series": [  # a week of 92% feedback accuracy, then 85%: 7 points down on a week ago
        series("ainative_feedback_accuracy", "0.92x10100 0.85x100", **A, version="v0003"),
        series("ainative_feedback_accuracy", "0.75x10200", **A, version="v0002")],
     "alert_rule_test": [
        alerts("AinativeFeedbackAccuracyDrop", "10150m"),  # dropped 49 minutes ago: not yet for 1h
        alerts("AinativeFeedbackAccuracyDrop", "10190m", {"severity": "critical", "job": "ainative", "version": "v0003"}),
        alerts("AinativeFeedbackAccuracyLow", "10190m", {"severity": "warning", "job": "ainative", "version": "v0002"})]},
    {"interval": "1m", "input_series": [  # traffic with 2% 503s on A, and failing probes only on B
        series("ainative_http_requests_total", "0+100x30", **A, handler="/predict", method="POST", code="200"),
        series("ainative_http_requests_total", "0+2x30", **A, handler="/predict", method="POST", code="503"),
        series("ainative_http_requests_total", "0+100x30", **B, handler="/predict", method="POST", code="200"),
        series("ainative_http_requests_total", "0+50x30", **B, handler="/ready", method="GET", code="503"),
        series("ainative_http_request_duration_seconds_bucket", "0+50x30", **A, handler="/predict", method="POST", le="0.5"),
        series("ainative_http_request_duration_seconds_bucket", "0+100x30", **A, handler="/predict", method="POST", le="1"),
        series("ainative_http_request_duration_seconds_bucket", "0+100x30", **A, handler="/predict", method="POST", le="+Inf"),
        series("ainative_queue_depth", "450x30", **A),
        series("ainative_queue_capacity", "512x30", **A),
        series("ainative_queue_depth", "0x30", **B),
        series("ainative_model_info", "1x30", **A, **MODEL_INFO),
        series("ainative_component_up", "1x5 0x25", **A, component="request_log_writer"),
        series("ainative_component_up", "1x30", **A, component="batch_worker"),
        series("ainative_component_restarts", "0x10 1x20", **A, component="request_log_writer"),
        series("ainative_request_log_rows_total", "0+100x30", **A, outcome="written"),
        series("ainative_request_log_rows_total", "0x10 0+5x20", **A, outcome="dropped")],
     "alert_rule_test": [
        alerts("AinativeHighErrorRate", "25m", {"severity": "critical", "job": "ainative"}),
        alerts("AinativeHighLatencyP99", "25m", {"severity": "warning", "job": "ainative"}),
        alerts("AinativeQueueSaturation", "25m", {"severity": "warning", **A}),
        alerts("AinativeNoModelServed", "25m", {"severity": "critical", **B}),
        alerts("AinativeComponentDown", "25m", {"severity": "critical", **A, "component": "request_log_writer"}),
        alerts("AinativeComponentRestarting", "15m", {"severity": "warning", **A, "component": "request_log_writer"}),
        alerts("AinativeComponentRestarting", "29m"),
        alerts("AinativeRequestLogDropping", "25m", {"severity": "warning", **A, "outcome": "dropped"}),
        alerts("AinativeRequestLogDropping", "8m")]},
    {"interval": "1m", "input_series": [  # replicas scraped, none with a model, no drift status
        series("ainative_queue_depth", "0x80", **B)],
     "alert_rule_test": [
        alerts("AinativeNoModelServed", "10m", {"severity": "critical"}, {"severity": "critical", **B}),
        alerts("AinativeDriftNotEvaluated", "70m")]},
    {"interval": "1m", "input_series": [  # a model served, no drift status for over an hour
        series("ainative_model_info", "1x80", **A, **MODEL_INFO)],
     "alert_rule_test": [alerts("AinativeDriftNotEvaluated", "30m"), alerts("AinativeDriftNotEvaluated", "70m", {"severity": "info"})]},
]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_alerts_fire_on_the_situations_they_name(tmp_path):
    "promtool's rule unit tests on synthetic series (annotations left out: their templates are checked above)."
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]: rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": RULE_TESTS}))
    tested = subprocess.run(["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-6000:]


def test_rules_alert_on_what_the_issue_asks_for():
    by_name = {rule["alert"]: rule for rule in rules()}
    def expr(name: str) -> str: return " ".join(by_name[name]["expr"].split())
    assert expr("AinativeDriftAlert").endswith("(ainative_drift_status) == 2") and by_name["AinativeDriftAlert"]["for"] == "15m"
    assert by_name["AinativeDriftAlert"]["labels"]["severity"] == "critical"
    assert expr("AinativeDriftWarning").endswith("(ainative_drift_status) == 1")
    assert by_name["AinativeDriftWarning"]["labels"]["severity"] == "warning"
    assert expr("AinativeFeedbackAccuracyLow").endswith("(ainative_feedback_accuracy) < 0.8")
    assert "ainative_feedback_accuracy offset 1w" in expr("AinativeFeedbackAccuracyDrop") and expr("AinativeFeedbackAccuracyDrop").endswith(">= 0.05")
    assert 'code=~"5.."' in expr("AinativeHighErrorRate") and expr("AinativeHighErrorRate").endswith("> 0.01")
    assert by_name["AinativeHighErrorRate"]["for"] == "10m"
    assert expr("AinativeHighLatencyP99").startswith("histogram_quantile(0.99,") and expr("AinativeHighLatencyP99").endswith("> 0.5")
    assert expr("AinativeQueueSaturation").endswith("(ainative_queue_depth) / max by (job, instance) (ainative_queue_capacity) > 0.8")
    assert 'ainative_request_log_rows_total{outcome="dropped"}' in expr("AinativeRequestLogDropping")
    assert expr("AinativeComponentDown").endswith("(ainative_component_up) == 0") and by_name["AinativeComponentDown"]["for"] == "2m"
    assert expr("AinativeNoModelServed").startswith("absent(ainative_model_info == 1)")


def test_the_queue_limit_comes_from_the_server_not_a_number():
    "Rules and dashboard follow AINATIVE_MAX_QUEUE through the server's ainative_queue_capacity gauge."
    from ainative.serving import ServingConfig
    exprs = [expr for _, expr in dashboard_exprs()] + [rule["expr"] for rule in rules()]
    assert [expr for expr in exprs if str(ServingConfig().max_queue) in expr] == []
    assert any("ainative_queue_capacity" in expr for expr in exprs)


# --- against the live server ---------------------------------------------------------------------------------------
def exposition(text: str) -> tuple[dict[str, str], set[str]]:
    "(family name -> type from the # TYPE lines, names of the samples) of a Prometheus text exposition."
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    return families, samples


def exposed(name: str, families: dict[str, str], samples: set[str]) -> bool:
    "Whether a query may select `name`: a family, a sample, or a histogram's _bucket/_sum/_count."
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name in families or name in samples or (base != name and families.get(base) in ("histogram", "summary"))


@pytest.fixture(scope="module")
def metrics_text(deploy_demo, tmp_path_factory) -> str:
    "/metrics of a real server after /predict, /predict/batch, /feedback and /monitor, with a reference profile attached."
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from live_server import ServerProcess, wait_until
    from ainative.monitor import attach_reference, reference_profile
    from ainative.registry import Registry
    registry = Registry(deploy_demo / "registry")
    version = registry.aliases(MODEL)["production"]
    labels = [label for _, label in sorted(registry.show(MODEL, version)["labels"]["id2label"].items(), key=lambda kv: int(kv[0]))]
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(len(labels)), 200)
    attach_reference(registry, MODEL, version, reference_profile(labels, probabilities, rng.integers(10, 80, 200)))
    server = ServerProcess(deploy_demo / "registry", tmp_path_factory.mktemp("monitoring-serve"),
                           env={"AINATIVE_MIN_REQUESTS": "1", "AINATIVE_LOG_FLUSH_S": "0.1"})
    server.start().wait_ready()
    try:
        with server.client() as client:
            answers = [client.post("/predict", json={"text": text}).json() for text in
                       ("where is my parcel?", "I want my money back", "cancel the order please", "my card was declined")]
            assert client.post("/predict/batch", json={"texts": ["refund please", "log me in"]}).status_code == 200
            stored = client.post("/feedback", json={"request_id": answers[0]["request_id"], "label": answers[0]["intent"]})
            assert stored.status_code == 200, stored.text
            assert client.get("/monitor").status_code == 200
            return wait_until(lambda: (lambda text: text if "ainative_feedback_accuracy{" in text else None)(client.get("/metrics").text),
                              20, "the feedback accuracy gauge set by /monitor")
    finally:
        server.stop()


def test_every_metric_the_files_name_is_on_the_servers_metrics(metrics_text):
    families, samples = exposition(metrics_text)
    missing = sorted(name for name in referenced_metrics() if not exposed(name, families, samples))
    assert not missing, f"named in deploy/monitoring but not on /metrics: {missing}"


def test_every_metric_the_files_name_has_samples_once_there_was_traffic(metrics_text):
    "A family that is declared but never set would leave its panels empty and its alerts silent."
    families, samples = exposition(metrics_text)
    def sampled(name: str) -> bool:
        return name in samples or any(sample in samples for sample in (name + "_total", name + "_count", name + "_bucket"))
    empty = sorted(name for name in referenced_metrics() if not sampled(name))
    assert not empty, f"on /metrics without a single sample after /predict, /feedback and /monitor: {empty}"
