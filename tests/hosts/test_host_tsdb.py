"""Time-series database VM (GCP) or the local InfluxDB container: what is particular to InfluxDB. The
checks every role shares are in test_host_roles.py."""

from __future__ import annotations

import shlex

from infra import catalog

ROLE = catalog.TSDB


def test_tsdb_runs_influxdb(role):
    assert catalog.INFLUXDB.name in {s.name for s in role.services()}


def test_influxdb_answers_ping(role):
    influxdb = role.hosts.containers[catalog.INFLUXDB.name]
    ping = role.engine.run(f"docker exec {shlex.quote(influxdb)} influx ping")
    assert ping.rc == 0 and "OK" in ping.stdout, ping.stdout + ping.stderr
