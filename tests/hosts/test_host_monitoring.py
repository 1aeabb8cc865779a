"""Monitoring VM (GCP) or the local Prometheus and Grafana containers."""

from __future__ import annotations

import shlex

from host_checks import (
    check_containers_running_and_healthy,
    check_data_disk_mounted,
    check_no_secret_in_world_readable_files,
    check_ports_listening_only_where_expected,
    check_prometheus_loaded_every_rule_group,
    check_prometheus_scrapes_every_job,
    check_restarts_after_reboot,
)

from infra import catalog
from infra.render.cloud_init import DEFAULT_DATA_DISK

ROLE = catalog.MONITORING
SEARCH_DIRS = ("/etc", "/home", "/tmp", "/var/tmp", f"{DEFAULT_DATA_DISK.mount_path}/prometheus-config",
               f"{DEFAULT_DATA_DISK.mount_path}/grafana-provisioning")


def test_containers_running_and_healthy(role):
    assert {s.name for s in role.services()} >= {catalog.PROMETHEUS.name, catalog.GRAFANA.name,
                                                 catalog.NODE_EXPORTER.name}
    check_containers_running_and_healthy(role)


def test_ports_listening_only_where_expected(role):
    check_ports_listening_only_where_expected(role)


def test_data_disk_mounted(role):
    check_data_disk_mounted(role)


def test_services_restart_after_reboot(role):
    check_restarts_after_reboot(role)


def test_no_secret_in_world_readable_files(role):
    check_no_secret_in_world_readable_files(role, SEARCH_DIRS)


def _fetch(role):
    prometheus = shlex.quote(role.hosts.containers[catalog.PROMETHEUS.name])
    port = catalog.PROMETHEUS.port("http")
    return lambda path: role.engine.check_output(
        f"docker exec {prometheus} wget -qO- http://localhost:{port}{path}")


def test_prometheus_loaded_every_rule_group(role):
    check_prometheus_loaded_every_rule_group(_fetch(role))


def test_prometheus_scrapes_every_job_and_all_targets_are_up(role):
    check_prometheus_scrapes_every_job(_fetch(role))
