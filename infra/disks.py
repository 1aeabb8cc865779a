"""Data disks against the load: how full the brokers' and InfluxDB's disks are at the end of retention.

Kafka keeps every reading for the topic's retention on every replica; each broker holds a replica of
every partition (replication factor = brokers), so each broker's disk holds the whole topic:
rate x bytes per reading x retention (`KAFKA_BYTES_PER_READING`, measured on the real test broker).
InfluxDB keeps each reading as one point of seven float fields, and each window as one point of the
window statistics per farm and zone (the 4 zones per farm of the producer's default fleet), for the
bucket's retention; InfluxData's sizing guide gives about three bytes per stored non-string value
(`INFLUXDB_BYTES_PER_VALUE`); tags and field keys are stored once per series.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydrostream_jobs.contract import VALUE_FIELDS

# On-disk bytes of one reading in a broker's log: 5,000 messages of the real producer (jobs/producer.py
# --sink kafka, the test fleet of tests/kafka/pipeline.py) took 1,215,043 bytes in the two partitions'
# .log files of the test broker (Kafka 3.9.1, no compression): 243.0 per record, the JSON value and
# the record's own framing; a batch header is shared by the records a linger gathers.
# tests/kafka/test_kafka_end_to_end.py measures it again on every run (within 15%).
KAFKA_BYTES_PER_READING = 243
KAFKA_MEASURED_ON = "2026-12-07"
# "Non-string values require approximately three bytes" per stored value (InfluxData, Hardware sizing
# guidelines, "How much storage do I need?": https://docs.influxdata.com/influxdb/v1/guides/hardware_sizing/);
# the same TSM engine stores InfluxDB 2.7's data.
INFLUXDB_BYTES_PER_VALUE = 3
# The window statistics point: mean, min and max of every value, the reading count and the device count
# (jobs/hydrostream_jobs/windows.py WINDOW_STAT_FIELDS).
WINDOW_FIELDS = 3 * len(VALUE_FIELDS) + 2
ZONES_PER_FARM = 4          # jobs/producer.py's default --zones-per-farm
# Above this fill at the end of retention the plan warns: compactions and a restore need room to write
# beside what is kept, and a full disk stops the service.
WARN_FILL = 0.8
GB = 1024 ** 3


@dataclass(frozen=True)
class DiskFill:
    """One data disk at the end of retention."""

    what: str                   # "kafka (each broker)", "influxdb"
    disk_gb: int
    stored_bytes: float
    basis: str                  # how `stored_bytes` was computed, for the plan

    @property
    def fill(self) -> float:
        return self.stored_bytes / (self.disk_gb * GB)

    def line(self) -> str:
        warning = (f"; warning: above {WARN_FILL:.0%}, give it at least "
                   f"{self.stored_bytes / WARN_FILL / GB:,.0f} GB" if self.fill > WARN_FILL else "")
        return (f"  {self.what + ':':<19}{self.stored_bytes / GB:,.1f} GB of {self.disk_gb:,} GB "
                f"({self.fill:.0%}) at the end of retention ({self.basis}){warning}")


def kafka_fill(rate: int, retention_hours: float, disk_gb: int) -> DiskFill:
    """Each broker's log at the end of the readings topic's retention."""
    stored = rate * KAFKA_BYTES_PER_READING * retention_hours * 3600
    return DiskFill("kafka (each broker)", disk_gb, stored,
                    f"{rate}/s x {KAFKA_BYTES_PER_READING} B x {retention_hours:g} h")


def influxdb_values_per_second(rate: int, farms: int, slide_s: float) -> float:
    """The field values InfluxDB stores a second: each reading's values and each window's statistics."""
    return rate * len(VALUE_FIELDS) + farms * ZONES_PER_FARM * WINDOW_FIELDS / slide_s


def influxdb_fill(rate: int, farms: int, slide_s: float, retention_days: int, disk_gb: int) -> DiskFill:
    """InfluxDB's data at the end of the bucket's retention: readings' and windows' stored values."""
    values_per_second = influxdb_values_per_second(rate, farms, slide_s)
    stored = values_per_second * INFLUXDB_BYTES_PER_VALUE * retention_days * 86400
    return DiskFill("influxdb", disk_gb, stored,
                    f"{values_per_second:,.0f} values/s x {INFLUXDB_BYTES_PER_VALUE} B x {retention_days} d")


def report(fills: tuple[DiskFill, ...]) -> list[str]:
    return ["data disks:", *(fill.line() for fill in fills)] if fills else []
