"""Monitoring VM (GCP) or the local Prometheus and Grafana containers."""

from __future__ import annotations

import json
import shlex

import yaml
from host_checks import (
    check_containers_running_and_healthy,
    check_data_disk_mounted,
    check_no_secret_in_world_readable_files,
    check_ports_listening_only_where_expected,
    check_restarts_after_reboot,
)

from infra import catalog, scrape_config
from infra.cloud_init import DEFAULT_DATA_DISK

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


def _prometheus_api(role, path: str) -> dict:
    prometheus = role.hosts.containers[catalog.PROMETHEUS.name]
    port = catalog.PROMETHEUS.port("http")
    result = role.engine.run(f"docker exec {shlex.quote(prometheus)} wget -qO- "
                             f"http://localhost:{port}{path}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)["data"]


def test_prometheus_loaded_every_rule_group(role):
    expected = {group["name"] for path in sorted(scrape_config.RULES_DIR.glob("*.yml"))
                for group in yaml.safe_load(path.read_text())["groups"]}
    loaded = {group["name"] for group in _prometheus_api(role, "/api/v1/rules")["groups"]}
    assert loaded == expected


def test_prometheus_scrapes_every_job_and_all_targets_are_up(role):
    active = _prometheus_api(role, "/api/v1/targets")["activeTargets"]
    assert {t["labels"]["job"] for t in active} == set(scrape_config.JOBS)
    down = {t["scrapeUrl"]: t["lastError"] for t in active if t["health"] != "up"}
    assert down == {}
