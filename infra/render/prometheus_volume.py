"""Prometheus configuration: what it scrapes per stack, where its alert rules live and where alerts go.

Pure: no Pulumi resources and no I/O beyond reading the template and rules shipped in this repo.
Callers (the GCP monitoring VM, the local Docker stack) resolve their Outputs first, then:

    targets = ScrapeTargets.for_hosts(
        stack="dev",
        spark_driver="10.20.0.7",                   # where the producer and consumer drivers run
        kafka_hosts=("10.20.0.5",),                 # the broker VMs (their metrics agent)
        node_hosts=("10.20.0.5", "10.20.0.6", "10.20.0.8"),
    )
    files = prometheus_config_files(targets)      # {"prometheus.yml": ..., "rules/<name>.yml": ...}

and put `files` into the `prometheus-config` volume (mounted at /etc/prometheus). Ports come from
the data contract (job metrics) and the service catalog (exporters, Prometheus); a `ScrapeTargets`
built by hand takes full `host:port` addresses. Job names are stable (`JOBS`): the alert rules,
the dashboards and the host checks refer to them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hydrostream_jobs import contract

from infra import catalog
from infra.paths import PROJECT_DIR
from infra.render.templating import render_file

MONITORING_DIR = PROJECT_DIR / "monitoring" / "prometheus"
TEMPLATE = "prometheus.yml.j2"
RULES_DIR = MONITORING_DIR / "rules"

# Where the prometheus-config volume is mounted in the container (catalog.PROMETHEUS).
CONFIG_MOUNT = next(v.container_path for v in catalog.PROMETHEUS.volumes if v.name == "prometheus-config")
RULE_FILES = f"{CONFIG_MOUNT}/rules/*.yml"

JOB_PRODUCER = "hydro-producer"
JOB_CONSUMER = "hydro-consumer"
JOB_KAFKA = "kafka"  # each broker's own metrics: the JMX exporter agent in its JVM
JOB_NODE_EXPORTER = "node-exporter"
JOB_PROMETHEUS = "prometheus"
JOBS = (JOB_PRODUCER, JOB_CONSUMER, JOB_KAFKA, JOB_NODE_EXPORTER, JOB_PROMETHEUS)

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
    prometheus: tuple[str, ...] = (f"localhost:{catalog.PROMETHEUS.port('http')}",)
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
                  node_hosts: Sequence[str], prometheus_host: str = "localhost",
                  alertmanager_host: str = "localhost") -> ScrapeTargets:
        """Targets from host names or IPs, with every port taken from the contract and the catalog."""
        kafka_port = catalog.KAFKA.port("metrics")
        return cls(
            stack=stack,
            producer=(f"{spark_driver}:{contract.PRODUCER_METRICS_PORT}",),
            consumer=(f"{spark_driver}:{contract.CONSUMER_METRICS_PORT}",),
            kafka=tuple(f"{host}:{kafka_port}" for host in kafka_hosts),
            node_exporter=tuple(f"{host}:{catalog.NODE_EXPORTER.port('metrics')}" for host in node_hosts),
            prometheus=(f"{prometheus_host}:{catalog.PROMETHEUS.port('http')}",),
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
        }


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


def rule_files() -> dict[str, str]:
    """The alert rule files, as paths relative to the config volume -> their text."""
    return {f"rules/{path.name}": path.read_text() for path in sorted(RULES_DIR.glob("*.yml"))}


def prometheus_config_files(targets: ScrapeTargets) -> dict[str, str]:
    """The whole prometheus-config volume: prometheus.yml and the rules it loads."""
    return {"prometheus.yml": render_prometheus_config(targets), **rule_files()}
