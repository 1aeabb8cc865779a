"""The services' own metrics (monitoring/prometheus/rules/services.yml) against real servers.

InfluxDB's and Alertmanager's metric names, labels and label values are read from a real influxd
(tests/influxdb, the catalog's 2.7) and a real Alertmanager (the catalog's 0.28), scraped the way
Prometheus scrapes them: /metrics, no credentials. A real Prometheus with the rendered config scrapes
both and evaluates the write-error rule on writes influxd really refused.

Grafana cannot run here (no binary or image), so its rules use Prometheus' own `up` only. That its
/metrics answers without credentials is Grafana's default: `[metrics] enabled = true` with empty
`basic_auth_username`/`basic_auth_password` in conf/defaults.ini, and pkg/api/http_server.go
(`metricsEndpoint`) asks for basic auth only when both are set (grafana/grafana; 11.6.3's tree was not
readable here, the same settings and handler are in every release read from 6.x to 12.2-pre).
"""

from __future__ import annotations

import gzip
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alertmanager_server import AlertmanagerServer, alertmanager_server
from hydrostream_jobs import contract
from local_server import wait_until
from prometheus_server import PrometheusServer, get_json, prometheus_server
from promql_names import (
    SERVED_JOBS,
    TARGET_LABELS,
    grouping_labels,
    label_matchers,
    metric_names,
    served_metrics,
)

from infra.render.alertmanager_config import render_alertmanager_config
from infra.render.prometheus_volume import JOB_ALERTMANAGER, JOB_GRAFANA, JOB_INFLUXDB, JOBS
from infra.settings import AlertingSettings
from tests.influxdb.influxdb_server import InfluxBucket, InfluxServer

RULES_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus" / "rules"
WRITE_ERRORS = "HydroInfluxDBWriteErrors"

Exposition = dict[str, list[dict[str, str]]]


def alerts(path: Path) -> dict[str, dict]:
    return {rule["alert"]: rule for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]}


SERVICE_ALERTS = alerts(RULES_DIR / "services.yml")


# A sample line of Prometheus' text format, read as written: prometheus_client's parser renames a
# counter's samples to `<name>_total`, which influxd's http_write_request_count is not.
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+(?:\s+\S+)?")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> Exposition:
    """Sample name -> the label sets of its samples (label values left escaped)."""
    found: Exposition = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line.strip())
        assert match is not None, f"not a sample line: {line!r}"
        found.setdefault(match.group(1), []).append(dict(_LABEL.findall(match.group(2) or "")))
    return found


def scrape(base: str) -> Exposition:
    """What `base`/metrics exposes, fetched without credentials."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        assert response.status == 200
        return parse_exposition(response.read().decode())


def write(bucket: InfluxBucket, token: str, lines: str) -> int:
    """POST `lines` to the consumer's write path as the consumer does (gzip, ns); the HTTP status."""
    query = urllib.parse.urlencode({"org": bucket.org, "bucket": bucket.bucket, "precision": "ns"})
    request = urllib.request.Request(
        f"{bucket.url}{contract.INFLUX_WRITE_PATH}?{query}", data=gzip.compress(lines.encode()),
        method="POST", headers={"Authorization": f"Token {token}", "Content-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


GOOD = "sensor_readings,farm_id=f,zone=z,device_id=d ph=6.5 1767225600000000000\n"
BAD_LINE = "sensor_readings,farm_id=f ph=\n"
WRONG_TOKEN = "not-a-token"


@pytest.fixture(scope="module")
def influx(influxd: InfluxServer) -> tuple[InfluxServer, InfluxBucket]:
    """The session's influxd after a write it accepted (204), one with a wrong token (401) and one with
    broken line protocol (400)."""
    bucket = influxd.new_bucket()
    assert [write(bucket, bucket.token, GOOD), write(bucket, WRONG_TOKEN, GOOD),
            write(bucket, bucket.token, BAD_LINE)] == [204, 401, 400]
    return influxd, bucket


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, alertmanager_binary) -> Iterator[AlertmanagerServer]:
    """A real Alertmanager with the rendered config of a stack without receivers (the local stack's)."""
    config = render_alertmanager_config("verify", AlertingSettings())
    workdir = tmp_path_factory.mktemp("alertmanager-metrics")
    with alertmanager_server(alertmanager_binary, workdir, config) as am:
        yield am


@pytest.fixture(scope="module")
def expositions(influx, alertmanager) -> dict[str, Exposition]:
    """Scrape job -> what its real server exposes."""
    return {JOB_INFLUXDB: scrape(influx[0].url), JOB_ALERTMANAGER: scrape(alertmanager.base)}


def test_the_exposition_parser_keeps_names_as_written():
    text = ('# TYPE c counter\nc{a="x",b="y \\"q\\""} 1\nc 2 1700000000000\nd_total{e="1"} 3.5e+00\n'
            'h_bucket{le="+Inf"} 4\n')
    assert parse_exposition(text) == {"c": [{"a": "x", "b": 'y \\"q\\"'}, {}], "d_total": [{"e": "1"}],
                                      "h_bucket": [{"le": "+Inf"}]}


def test_the_grouping_and_served_metric_parsers():
    expr = ('sum by (stack, code) (rate(a_total{job="influxdb", path="/x"}[5m])) / ignoring (code) '
            'group_left sum without (le) (b{job="alertmanager"}) and on() up{job="influxdb"} '
            'or c{job="grafana"}')
    assert grouping_labels(expr) == {"stack", "code", "le"}
    assert served_metrics(expr) == {"a_total": JOB_INFLUXDB, "b": JOB_ALERTMANAGER}


def test_influxdb_serves_its_metrics_without_a_token_and_no_token_in_them(influx):
    influxd, bucket = influx
    with urllib.request.urlopen(f"{influxd.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert response.status == 200 and "http_api_requests_total" in text
    for token in (influxd.operator_token, bucket.token, bucket.read_token):
        assert token not in text


def test_the_services_down_alerts_and_the_generic_one_page_each_job_once():
    (targets,) = alerts(RULES_DIR / "targets.yml").values()
    (excluded,) = [value for metric, label, op, value in label_matchers(targets["expr"])
                   if metric == "up" and label == "job" and op == "!~"]
    own = {value for rule in SERVICE_ALERTS.values() if metric_names(rule["expr"]) == {"up"}
           for _, label, op, value in label_matchers(rule["expr"]) if label == "job" and op == "="}
    assert set(excluded.split("|")) == own == {JOB_INFLUXDB, JOB_ALERTMANAGER, JOB_GRAFANA}
    assert own < set(JOBS)


def test_grafana_rules_use_only_up():
    """No Grafana metric name can be read from a real Grafana here: none may be used."""
    for name, rule in SERVICE_ALERTS.items():
        jobs = {value for _, label, _, value in label_matchers(rule["expr"]) if label == "job"}
        if JOB_GRAFANA in jobs:
            assert metric_names(rule["expr"]) == {"up"}, name


@pytest.mark.parametrize("alert", sorted(SERVICE_ALERTS))
def test_every_metric_label_and_value_a_service_rule_selects_is_on_the_real_server(alert, expositions):
    expr = SERVICE_ALERTS[alert]["expr"]
    served = served_metrics(expr)
    assert metric_names(expr) - {"up"} == set(served), f"{alert}: a service metric without its job matcher"
    assert set(served.values()) <= SERVED_JOBS
    carried: set[str] = set()
    for metric, job in served.items():
        samples = expositions[job].get(metric)
        assert samples, f"{alert}: {metric} is not on the real {job}'s /metrics"
        labels = {label for sample in samples for label in sample}
        carried |= labels
        for selected, label, op, value in label_matchers(expr):
            if selected != metric or label in TARGET_LABELS:
                continue
            assert label in labels, f"{alert}: {metric} has no label {label!r} (it has {sorted(labels)})"
            values = {sample[label] for sample in samples if label in sample}
            if op in ("=", "!="):
                assert value in values, f"{alert}: {metric}{{{label}={value!r}}}: only {sorted(values)}"
            else:  # a regex must match a value that occurs, or it selects (or spares) nothing real
                assert any(re.fullmatch(value, v) for v in values), f"{alert}: {label}{op}{value!r}"
    assert grouping_labels(expr) - TARGET_LABELS <= carried


def test_the_write_rule_counts_the_consumer_s_refused_writes_which_only_its_metric_holds(expositions):
    """influxd 2.7 counts a write its handler refused in http_write_request_count only, and a write its
    authentication refused (401) nowhere: the rule reads the first, and a revoked token is the consumer's
    HydroSinkErrors alone (docs/operations.md says so; this fails once InfluxDB counts either)."""
    expr = SERVICE_ALERTS[WRITE_ERRORS]["expr"]
    endpoints = {value for metric, label, op, value in label_matchers(expr) if label == "endpoint"}
    assert endpoints == {contract.INFLUX_WRITE_PATH}
    influxdb = expositions[JOB_INFLUXDB]
    counted = {s["status"] for s in influxdb["http_write_request_count"]
               if s["endpoint"] == contract.INFLUX_WRITE_PATH}
    # The session's influxd is shared with the other tests of this worker: it may also count their
    # refused writes (403 of a read-only token, 422 of a field type), never fewer than this module's.
    assert counted >= {"204", "400"}
    on_the_api = {s["response_code"] for s in influxdb["http_api_requests_total"]
                  if s["path"] == contract.INFLUX_WRITE_PATH}
    assert on_the_api == {"204"}
    assert "401" not in counted
    assert not [name for name, samples in influxdb.items() for sample in samples if "401" in sample.values()]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, prometheus_binary, influx, alertmanager) -> Iterator[PrometheusServer]:
    """A real Prometheus with the rendered config, scraping the real influxd and Alertmanager."""
    address = urllib.parse.urlsplit(influx[0].url).netloc
    with prometheus_server(prometheus_binary, tmp_path_factory.mktemp("prometheus-services"),
                           alertmanager=alertmanager.address, influxdb=address) as server:
        yield server


def query(server: PrometheusServer, expr: str) -> list[dict]:
    return get_json(f"{server.base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")["result"]


def test_prometheus_scrapes_influxdb_and_alertmanager_without_credentials(prometheus):
    def both_up() -> dict[str, str] | None:
        found = query(prometheus, 'up{job=~"influxdb|alertmanager"}')
        up = {r["metric"]["job"]: r["value"][1] for r in found}
        return up if up == {JOB_INFLUXDB: "1", JOB_ALERTMANAGER: "1"} else None
    prometheus.wait_for(both_up, 60, "influxdb and alertmanager scraped")


def test_the_write_error_rule_fires_on_writes_influxd_refused(prometheus, influx):
    """Only refused writes between two scrapes: the rule's expression holds for 400, at a ratio of 1."""
    _, bucket = influx
    expr = SERVICE_ALERTS[WRITE_ERRORS]["expr"]
    # A first scrape holds every series (the module's writes), so the next ones give each a rate.
    prometheus.wait_for(lambda: query(prometheus, 'up{job="influxdb"} == 1'), 60, "a first influxdb scrape")
    assert query(prometheus, expr) == []

    def refused_and_seen() -> list[dict]:
        assert write(bucket, bucket.token, BAD_LINE) == 400
        return query(prometheus, expr)
    result = wait_until(refused_and_seen, 90, f"{WRITE_ERRORS}'s expression to hold", prometheus)
    assert [(r["metric"]["status"], r["metric"]["job"], float(r["value"][1])) for r in result] == [
        ("400", JOB_INFLUXDB, 1.0)]
