"""Prometheus configuration: what it scrapes per stack, where its alert rules live and where alerts go.

Pure: no Pulumi resources and no I/O beyond reading the template and rules shipped in this repo.
Callers (the GCP monitoring VM, the local Docker stack) resolve their Outputs first, then:

    targets = ScrapeTargets.for_hosts(
        stack="dev",
        spark_driver="10.20.0.7",                   # where the producer and consumer drivers run
        kafka_hosts=("10.20.0.5",),                 # the broker VMs (their metrics agent)
        node_hosts=("10.20.0.5", "10.20.0.6", "10.20.0.8"),
        influxdb_host="10.20.0.6",                  # the tsdb VM
    )
    files = prometheus_config_files(targets, alerts)  # {"prometheus.yml": ..., "rules/<name>.yml": ...}

where `alerts` is the stack's `AlertRules` (derived once in infra/model.py), and put `files` into the
`prometheus-config` volume (mounted at /etc/prometheus). Ports come from the data contract (job
metrics) and the service catalog (exporters, Prometheus, and InfluxDB, Alertmanager and Grafana, each
scraped on its own HTTP port at /metrics); a `ScrapeTargets` built by hand takes full `host:port`
addresses. Job names are stable (`JOBS`): the alert rules, the dashboards and the host checks refer to
them.

Rule files (monitoring/prometheus/rules/; the promtool unit tests in monitoring/prometheus/tests/ follow
the same convention, rendered with the same values):
- `<name>.yml`, a rule file without a per-stack value: shipped as it is written (but for its runbook
  addresses, below).
- `<name>.yml.j2`, a rule file with per-stack values: rendered by the one Jinja environment
  (infra/render/templating.py) with `alert` (the `AlertRules`), shipped as `<name>.yml`. Prometheus'
  own templates in its annotations (`{{ $labels.x }}`, `{{ $value }}`) are written inside
  `{% raw %}...{% endraw %}`; one left bare is a Jinja syntax error at render time (`$` and a leading
  `.` are not Jinja), never a silently mangled annotation.
- In both, `runbook_url: docs/operations.md#<anchor>` (unquoted) names the runbook by its path in this
  repository; the rendered file holds the absolute URL below the stack's `alerting.runbook_base_url`.
  A `runbook_url` that is not such a path refuses to render.
So converting a plain rule file is nothing; giving it a per-stack value is renaming it to `.yml.j2`,
wrapping its Prometheus templates in raw blocks and writing `{{ alert.<field> }}`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydrostream_jobs import contract

from infra import catalog
from infra.paths import PROJECT_DIR
from infra.render.templating import render_file, render_text

MONITORING_DIR = PROJECT_DIR / "monitoring" / "prometheus"
TEMPLATE = "prometheus.yml.j2"
RULES_DIR = MONITORING_DIR / "rules"
UNIT_TESTS_DIR = MONITORING_DIR / "tests"
TEMPLATE_SUFFIX = ".j2"

# Where the prometheus-config volume is mounted in the container (catalog.PROMETHEUS).
CONFIG_MOUNT = next(v.container_path for v in catalog.PROMETHEUS.volumes if v.name == "prometheus-config")
RULE_FILES = f"{CONFIG_MOUNT}/rules/*.yml"

JOB_PRODUCER = "hydro-producer"
JOB_CONSUMER = "hydro-consumer"
JOB_KAFKA = "kafka"  # each broker's own metrics: the JMX exporter agent in its JVM
JOB_NODE_EXPORTER = "node-exporter"
JOB_PROMETHEUS = "prometheus"
# The services' own /metrics endpoints (InfluxDB's on its HTTP port, unauthenticated in 2.7).
JOB_INFLUXDB = "influxdb"
JOB_ALERTMANAGER = "alertmanager"
JOB_GRAFANA = "grafana"
JOBS = (JOB_PRODUCER, JOB_CONSUMER, JOB_KAFKA, JOB_NODE_EXPORTER, JOB_PROMETHEUS, JOB_INFLUXDB,
        JOB_ALERTMANAGER, JOB_GRAFANA)

SCRAPE_INTERVAL = "15s"
SCRAPE_TIMEOUT = "10s"
EVALUATION_INTERVAL = "15s"

_ADDRESS = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})")
_STACK = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class ScrapeTargets:
    """The `host:port` addresses Prometheus scrapes in one stack, job by job."""

    stack: str
    producer: tuple[str, ...]
    consumer: tuple[str, ...]
    kafka: tuple[str, ...]
    node_exporter: tuple[str, ...]
    influxdb: tuple[str, ...]
    prometheus: tuple[str, ...] = (f"localhost:{catalog.PROMETHEUS.port('http')}",)
    # Beside Prometheus on the monitoring VM by default, like Prometheus itself.
    alertmanager: tuple[str, ...] = (f"localhost:{catalog.ALERTMANAGER.port('http')}",)
    grafana: tuple[str, ...] = (f"localhost:{catalog.GRAFANA.port('http')}",)
    # Where Prometheus sends firing alerts (not a scrape job).
    alertmanagers: tuple[str, ...] = (f"localhost:{catalog.ALERTMANAGER.port('http')}",)

    def __post_init__(self) -> None:
        if not _STACK.fullmatch(self.stack):
            raise ValueError(f"stack {self.stack!r}: lowercase letters, digits and hyphens")
        for job, addresses in {**self.by_job(), "alertmanagers": self.alertmanagers}.items():
            if isinstance(addresses, str) or not addresses:
                raise ValueError(f"{job}: a non-empty tuple of host:port addresses, got {addresses!r}")
            for address in addresses:
                match = _ADDRESS.fullmatch(address)
                if not match or not 0 < int(match.group(1)) < 65536:
                    raise ValueError(f"{job}: {address!r} is not a host:port address")
            if len(set(addresses)) != len(addresses):
                raise ValueError(f"{job}: duplicate addresses in {addresses!r}")

    @classmethod
    def for_hosts(cls, stack: str, spark_driver: str, kafka_hosts: Sequence[str],
                  node_hosts: Sequence[str], influxdb_host: str, prometheus_host: str = "localhost",
                  alertmanager_host: str = "localhost", grafana_host: str = "localhost") -> ScrapeTargets:
        """Targets from host names or IPs, with every port taken from the contract and the catalog."""
        kafka_port = catalog.KAFKA.port("metrics")
        return cls(
            stack=stack,
            producer=(f"{spark_driver}:{contract.PRODUCER_METRICS_PORT}",),
            consumer=(f"{spark_driver}:{contract.CONSUMER_METRICS_PORT}",),
            kafka=tuple(f"{host}:{kafka_port}" for host in kafka_hosts),
            node_exporter=tuple(f"{host}:{catalog.NODE_EXPORTER.port('metrics')}" for host in node_hosts),
            influxdb=(f"{influxdb_host}:{catalog.INFLUXDB.port('http')}",),
            prometheus=(f"{prometheus_host}:{catalog.PROMETHEUS.port('http')}",),
            alertmanager=(f"{alertmanager_host}:{catalog.ALERTMANAGER.port('http')}",),
            grafana=(f"{grafana_host}:{catalog.GRAFANA.port('http')}",),
            alertmanagers=(f"{alertmanager_host}:{catalog.ALERTMANAGER.port('http')}",),
        )

    def by_job(self) -> dict[str, tuple[str, ...]]:
        """Scrape job name -> its target addresses, in `JOBS` order."""
        return {
            JOB_PRODUCER: self.producer,
            JOB_CONSUMER: self.consumer,
            JOB_KAFKA: self.kafka,
            JOB_NODE_EXPORTER: self.node_exporter,
            JOB_PROMETHEUS: self.prometheus,
            JOB_INFLUXDB: self.influxdb,
            JOB_ALERTMANAGER: self.alertmanager,
            JOB_GRAFANA: self.grafana,
        }


@dataclass(frozen=True)
class AlertRules:
    """A stack's values in its alert rules, derived once in infra/model.py (`derive`)."""

    runbook_base_url: str               # absolute http(s), ending in "/": runbooks are below it
    batch_seconds: int                  # a micro-batch longer than the trigger interval falls behind
    watermark_lag_seconds: int          # normal: the watermark delay, a trigger and a batch
    offsets_behind: int                 # the largest partition's lag worth of the freshness objective
    freshness_objective_seconds: int    # a reading is in InfluxDB within this of its event time...
    freshness_target: float             # ...this share of the time (0.99): the error budget is the rest

    def __post_init__(self) -> None:
        url = urllib.parse.urlsplit(self.runbook_base_url)
        if url.scheme not in ("http", "https") or not url.hostname or not url.path.endswith("/"):
            raise ValueError(f"runbook_base_url {self.runbook_base_url!r}: an absolute http(s) URL ending "
                             f"in /")
        for name in ("batch_seconds", "watermark_lag_seconds", "offsets_behind",
                     "freshness_objective_seconds"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"{name}: a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.freshness_target < 1:
            raise ValueError(f"freshness_target: a share between 0 and 1, got {self.freshness_target!r}")

    @property
    def error_budget(self) -> float:
        """The share of readings that may miss the freshness objective."""
        return round(1 - self.freshness_target, 6)


_RUNBOOK = re.compile(r"^(?P<key>\s*runbook_url:[ \t]*)(?P<value>\S.*?)[ \t]*$", re.MULTILINE)
_RUNBOOK_PATH = re.compile(r"docs/[a-z0-9_/-]+\.md#[a-z0-9-]+")


def absolute_runbooks(text: str, base_url: str) -> str:
    """`text` with every `runbook_url: docs/<file>.md#<anchor>` resolved below `base_url`."""
    def resolve(match: re.Match[str]) -> str:
        path = match.group("value")
        if not _RUNBOOK_PATH.fullmatch(path):
            raise ValueError(f"runbook_url {path!r}: expected a path in this repository such as "
                             f"docs/operations.md#hydrosinkerrors (the stack's base URL is put before it)")
        return f"{match.group('key')}{urllib.parse.urljoin(base_url, path)}"
    return _RUNBOOK.sub(resolve, text)


def rendered_name(path: Path) -> str:
    """The file name Prometheus and promtool see: a template's without `.j2`."""
    return path.name.removesuffix(TEMPLATE_SUFFIX)


def render_monitoring_file(path: Path, alerts: AlertRules) -> str:
    """A rule or unit-test file for a stack: a template rendered with `alert`, runbooks made absolute."""
    text = path.read_text()
    if path.name.endswith(TEMPLATE_SUFFIX):
        text = render_text(text, str(path), alert=alerts)
    return absolute_runbooks(text, alerts.runbook_base_url)


def monitoring_files(folder: Path, alerts: AlertRules) -> dict[str, str]:
    """Every `*.yml` and `*.yml.j2` of `folder`, rendered for a stack: rendered name -> text."""
    paths = sorted([*folder.glob("*.yml"), *folder.glob(f"*.yml{TEMPLATE_SUFFIX}")])
    files = {rendered_name(path): render_monitoring_file(path, alerts) for path in paths}
    if len(files) != len(paths):
        raise ValueError(f"{folder}: a file and a template render to the same name")
    return dict(sorted(files.items()))


def render_prometheus_config(targets: ScrapeTargets) -> str:
    """prometheus.yml for `targets`, loading the rules from `RULE_FILES` inside the container."""
    jobs = [{"name": name, "targets": addresses} for name, addresses in targets.by_job().items()]
    return render_file(
        MONITORING_DIR / TEMPLATE,
        stack=targets.stack,
        jobs=jobs,
        alertmanagers=list(targets.alertmanagers),
        rule_files=RULE_FILES,
        scrape_interval=SCRAPE_INTERVAL,
        scrape_timeout=SCRAPE_TIMEOUT,
        evaluation_interval=EVALUATION_INTERVAL,
    )


def rule_files(alerts: AlertRules) -> dict[str, str]:
    """The alert rule files for a stack, as paths relative to the config volume -> their text."""
    return {f"rules/{name}": text for name, text in monitoring_files(RULES_DIR, alerts).items()}


def prometheus_config_files(targets: ScrapeTargets, alerts: AlertRules) -> dict[str, str]:
    """The whole prometheus-config volume: prometheus.yml and the rules it loads."""
    return {"prometheus.yml": render_prometheus_config(targets), **rule_files(alerts)}
