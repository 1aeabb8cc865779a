"""What the alert rules and dashboards may refer to, read independently of the rule and dashboard code.

The metric names and labels the jobs really expose are read from the jobs' own metric registries
(`hydrostream_jobs.metrics`), not from a list kept here; the PromQL parsing is a small regex
tokenizer, tested on its own in test_monitoring_prometheus.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hydrostream_jobs import contract
from hydrostream_jobs.consumer_job import CONSUMER_QUERY
from hydrostream_jobs.metrics import ConsumerMetrics, ProducerMetrics
from hydrostream_jobs.validate import REASONS
from prometheus_client.metrics import MetricWrapperBase

from infra.render.prometheus_volume import JOB_ALERTMANAGER, JOB_INFLUXDB
from tests.monitoring.stack_rules import rule_documents

# Exporter metrics the rules and dashboards use, as documented by the exporter (node_exporter v1.9
# filesystem collector) plus Prometheus' own `up`.
EXPORTER_METRICS = frozenset({
    "up",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
})
# The brokers' own metrics (the JMX exporter agent, job `kafka`) are not listed here: every name with this
# prefix in the rules and dashboards must be on a real broker's /metrics (tests/kafka/test_kafka_metrics.py).
KAFKA_PREFIX = "kafka_"
REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "monitoring" / "grafana" / "dashboards"

# Jobs whose metrics the rules take from a real server of the catalog's version: a metric selected with
# `job="<one of these>"` is checked against that server's /metrics by test_monitoring_services.py (a real
# influxd and a real Alertmanager), not here.
SERVED_JOBS = frozenset({JOB_INFLUXDB, JOB_ALERTMANAGER})

# Metrics host scripts leave for node-exporter's textfile collector, read from the scripts themselves
# (each writes its metrics' `# TYPE` lines).
TEXTFILE_SCRIPTS = tuple(REPO / "infra/render/templates" / name
                         for name in ("influxdb-backup.sh", "fetch-config.sh"))
TEXTFILE_METRICS = frozenset(name for script in TEXTFILE_SCRIPTS
                             for name in re.findall(r"^# TYPE (\w+) ", script.read_text(), re.MULTILINE))

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_BRACES = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords or labels."""
    text = _BRACES.sub(" ", _STRING.sub('""', expr))
    text = _GROUPING.sub(" ", _RANGE.sub(" ", text))
    return {name for name, call in _IDENT.findall(text) if not call and name.lower() not in _KEYWORDS}


def grouping_labels(expr: str) -> set[str]:
    """Label names in `by`, `without`, `on`, `ignoring`, `group_left` and `group_right` clauses."""
    text = _STRING.sub('""', expr)
    return {label.strip() for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*"
                                                   r"\(([^)]*)\)", text)
            for label in clause.split(",") if label.strip()}


def served_metrics(expr: str) -> dict[str, str]:
    """Metric -> the `SERVED_JOBS` job its selector names with `job="..."` (Prometheus' own `up` aside)."""
    return {metric: value for metric, label, op, value in label_matchers(expr)
            if label == "job" and op == "=" and value in SERVED_JOBS and metric != "up"}


def label_matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every label matcher written after a metric name."""
    found = []
    for metric, body in _SELECTOR.findall(expr):
        found += [(metric, label, op, value) for label, op, value in _MATCHER.findall(body)]
    return found


@dataclass(frozen=True)
class ExposedMetric:
    """A sample name the jobs expose, with the label names it carries."""

    name: str
    labels: frozenset[str]


def exposed_metrics() -> dict[str, ExposedMetric]:
    """Every sample name the producer and consumer expose (counters `_total`, histograms' series)."""
    exposed: dict[str, ExposedMetric] = {}
    for metrics in (ConsumerMetrics(), ProducerMetrics()):
        for metric in vars(metrics).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            labels = frozenset(metric._labelnames)
            base = metric._name
            names = {
                "counter": [f"{base}_total"],
                "gauge": [base],
                "histogram": [f"{base}_bucket", f"{base}_sum", f"{base}_count"],
            }[metric._type]
            for name in names:
                extra = {"le"} if name.endswith("_bucket") else set()
                exposed[name] = ExposedMetric(name, labels | extra)
    return exposed


# Label values the jobs produce, per label name.
LABEL_VALUES: dict[str, frozenset[str]] = {
    "status": frozenset({contract.STATUS_VALID, contract.STATUS_QUARANTINED}),
    "measurement": frozenset(contract.MEASUREMENTS),
    "query": frozenset({CONSUMER_QUERY}),
    "reason": frozenset(REASONS),
}

# Labels Prometheus attaches to every scraped series (scrape config target labels included).
TARGET_LABELS = frozenset({"job", "instance", "stack"})


def unknown_references(expr: str) -> list[str]:
    """Every metric, label or label value in `expr` that nothing exposes, as readable problems."""
    exposed = exposed_metrics()
    served = served_metrics(expr)
    problems = []
    for name in sorted(metric_names(expr)):
        if name.startswith(KAFKA_PREFIX):
            continue
        if name not in exposed and name not in EXPORTER_METRICS | TEXTFILE_METRICS | set(served):
            problems.append(f"metric {name!r} is exposed by neither the jobs, an exporter nor a host script")
    for metric, label, op, value in label_matchers(expr):
        if metric not in exposed or label in TARGET_LABELS:
            continue
        if label not in exposed[metric].labels:
            problems.append(f"{metric} has no label {label!r} (it has {sorted(exposed[metric].labels)})")
        elif op == "=" and label in LABEL_VALUES and value not in LABEL_VALUES[label]:
            problems.append(f"{metric}{{{label}={value!r}}}: the jobs never set that value "
                            f"({sorted(LABEL_VALUES[label])})")
    return problems


def monitoring_promql() -> dict[str, str]:
    """Every PromQL expression of the alert rules and the dashboards, by where it is (file and alert or
    panel); a dashboard variable's label_values(metric, label) counts as its metric."""
    found = {}
    # The rules as prod ships them: the templates (*.yml.j2) rendered with its thresholds, which change
    # numbers only, never a metric or a label.
    for name, document in sorted(rule_documents("prod").items()):
        for group in document["groups"]:
            for rule in group["rules"]:
                found[f"{name} {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for number, target in enumerate(panel.get("targets", [])):
                if target["datasource"]["type"] == "prometheus":
                    found[f"{path.name} panel {panel['title']!r} #{number}"] = target["expr"]
        for variable in board.get("templating", {}).get("list", []):
            if variable["datasource"]["type"] == "prometheus":
                query = variable["query"]
                values = re.fullmatch(r"label_values\((\w+), *\w+\)", query)
                found[f"{path.name} variable {variable['name']}"] = values.group(1) if values else query
    return found


def kafka_metric_references() -> dict[str, list[str]]:
    """Every broker metric name (KAFKA_PREFIX) the rules and dashboards use -> where."""
    names: dict[str, list[str]] = {}
    for where, expr in monitoring_promql().items():
        for name in sorted(metric_names(expr)):
            if name.startswith(KAFKA_PREFIX):
                names.setdefault(name, []).append(where)
    return names
