"""InfluxDB's service spec: its one-time setup (org, bucket, retention), memory limit and environment.

The GCP VM (infra/render/cloud_init.py) and the local container (infra/local/stack.py) both run
`InfluxDbSpec.env`; `influxdb_spec` takes GOMEMLIMIT from `sizing.influxdb_memory_limit_mb` of the
memory InfluxDB is given (the VM's shape, or the container's limit). Only secret file paths are in
the environment (the catalog's `*_FILE` variables), never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from infra import catalog, sizing

MIN_MEMORY_LIMIT_MB = 64

_INFLUX_DURATION = re.compile(r"0|([0-9]+(ns|us|ms|s|m|h|d|w))+")


@dataclass(frozen=True)
class InfluxDbSpec:
    """InfluxDB 2.x as every target runs it: set up once with `org`, `bucket` and `retention`."""

    service: catalog.Service
    org: str
    bucket: str
    retention: str          # an InfluxDB duration, e.g. "30d"; "0" keeps data forever
    memory_limit_mb: int    # GOMEMLIMIT: the Go runtime collects before the memory limit is reached

    def __post_init__(self) -> None:
        for what, value in (("org", self.org), ("bucket", self.bucket)):
            if not value or not value.isprintable() or value != value.strip():
                raise ValueError(f"InfluxDB {what} {value!r}: must be non-empty printable text without "
                                 f"surrounding spaces")
        if not _INFLUX_DURATION.fullmatch(self.retention):
            raise ValueError(f"InfluxDB retention {self.retention!r}: use a duration like 30d or 720h, "
                             f"0 for forever")
        if self.memory_limit_mb < MIN_MEMORY_LIMIT_MB:
            raise ValueError(f"InfluxDB memory_limit_mb must be at least {MIN_MEMORY_LIMIT_MB}, "
                             f"got {self.memory_limit_mb}")

    @property
    def env(self) -> dict[str, str]:
        """The container's environment beside its secret files' `*_FILE` variables."""
        return {
            **self.service.env,
            # The image's entrypoint applies these only while its bolt database is missing.
            "DOCKER_INFLUXDB_INIT_ORG": self.org,
            "DOCKER_INFLUXDB_INIT_BUCKET": self.bucket,
            "DOCKER_INFLUXDB_INIT_RETENTION": self.retention,
            "GOMEMLIMIT": f"{self.memory_limit_mb}MiB",
        }

    @property
    def admin_user(self) -> str:
        """The admin user the setup creates (the scoped-token scripts name it)."""
        return self.service.env["DOCKER_INFLUXDB_INIT_USERNAME"]


class SetupSettings(Protocol):
    """What InfluxDB's one-time setup is made of (the stack's `influxdb` settings have it)."""

    org: str
    bucket: str
    retention_days: int


def influxdb_spec(influxdb: SetupSettings, memory_mb: int) -> InfluxDbSpec:
    """InfluxDB given `memory_mb` (its VM's or its container's): GOMEMLIMIT by sizing's one rule."""
    return InfluxDbSpec(service=catalog.INFLUXDB, org=influxdb.org, bucket=influxdb.bucket,
                        retention=f"{influxdb.retention_days}d",
                        memory_limit_mb=sizing.influxdb_memory_limit_mb(memory_mb))
