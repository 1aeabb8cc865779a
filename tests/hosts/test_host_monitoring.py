"""Monitoring VM (GCP) or the local Prometheus and Grafana containers: what is particular to them. The
checks every role shares are in test_host_roles.py."""

from __future__ import annotations

import shlex

from host_checks import check_prometheus_loaded_every_rule_group, check_prometheus_scrapes_every_job

from infra import catalog

ROLE = catalog.MONITORING


def test_monitoring_runs_prometheus_grafana_and_node_exporter(role):
    assert {s.name for s in role.services()} >= {catalog.PROMETHEUS.name, catalog.GRAFANA.name,
                                                 catalog.NODE_EXPORTER.name}


def _fetch(role):
    prometheus = shlex.quote(role.hosts.containers[catalog.PROMETHEUS.name])
    port = catalog.PROMETHEUS.port("http")
    return lambda path: role.engine.check_output(
        f"docker exec {prometheus} wget -qO- http://localhost:{port}{path}")


def test_prometheus_loaded_every_rule_group(role):
    check_prometheus_loaded_every_rule_group(_fetch(role))


def test_prometheus_scrapes_every_job_and_all_targets_are_up(role):
    check_prometheus_scrapes_every_job(_fetch(role))
