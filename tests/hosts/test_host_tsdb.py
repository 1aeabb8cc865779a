"""Time-series database VM (GCP) or the local InfluxDB container."""

from __future__ import annotations

import shlex

from host_checks import (
    check_containers_running_and_healthy,
    check_data_disk_mounted,
    check_no_secret_in_world_readable_files,
    check_ports_listening_only_where_expected,
    check_restarts_after_reboot,
)

from infra import catalog
from infra.render.cloud_init import DEFAULT_DATA_DISK

ROLE = catalog.TSDB
SEARCH_DIRS = ("/etc", "/home", "/tmp", "/var/tmp", f"{DEFAULT_DATA_DISK.mount_path}/influxdb-config")


def test_containers_running_and_healthy(role):
    assert catalog.INFLUXDB.name in {s.name for s in role.services()}
    check_containers_running_and_healthy(role)


def test_ports_listening_only_where_expected(role):
    check_ports_listening_only_where_expected(role)


def test_data_disk_mounted(role):
    check_data_disk_mounted(role)


def test_services_restart_after_reboot(role):
    check_restarts_after_reboot(role)


def test_no_secret_in_world_readable_files(role):
    check_no_secret_in_world_readable_files(role, SEARCH_DIRS)


def test_influxdb_answers_ping(role):
    influxdb = role.hosts.containers[catalog.INFLUXDB.name]
    ping = role.engine.run(f"docker exec {shlex.quote(influxdb)} influx ping")
    assert ping.rc == 0 and "OK" in ping.stdout, ping.stdout + ping.stderr
