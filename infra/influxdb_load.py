"""InfluxDB's machine against the load: InfluxData's single-node guidelines, by field writes and series.

InfluxData's hardware sizing guidelines for one node (InfluxDB OSS, "InfluxDB OSS guidelines":
https://docs.influxdata.com/influxdb/v1/guides/hardware_sizing/; InfluxDB 2.7 stores data in the same
TSM engine, and its own docs give no other table) put a node's load in a band by its field writes per
second, its unique series and its queries per second, and give each band's cores and RAM. RAM follows
the series above all ("your RAM requirements are primarily determined by series cardinality"). A single
node beyond 750,000 field writes a second or 10,000,000 series is not supported at all. The queries here
are Grafana's dashboards, a few a minute: below the lowest band's 5 a second, so writes and series decide.

A stack's field writes are the values the consumer stores a second (infra/disks.py); its series are one
per device and value field of `sensor_readings` (tags farm, zone, device) plus one per farm, zone and
window statistic of `sensor_window_stats`. The plan prints the band and what the VM has, and warns when
the VM has fewer cores or less memory than its band asks, or more than OVERSIZE_FACTOR times the band's
largest memory (the same factor as the cluster's: a coarse guideline, not a measurement).
"""

from __future__ import annotations

from dataclasses import dataclass

from hydrostream_jobs.contract import VALUE_FIELDS

from infra import disks, sizing

OVERSIZE_FACTOR = 2.0
SINGLE_NODE_MAX_WRITES = 750_000
SINGLE_NODE_MAX_SERIES = 10_000_000
GUIDELINES = "InfluxData's single-node hardware sizing guidelines"


@dataclass(frozen=True)
class Band:
    """One load band of the guidelines: below both bounds, a node wants these cores and this memory."""

    name: str
    max_writes: int              # field writes a second
    max_series: int
    cores: tuple[int, int | None]        # (least, most); None: no upper bound given
    memory_gb: tuple[int, int | None]


BANDS = (
    Band("low", 5_000, 100_000, (2, 4), (2, 4)),
    Band("moderate", 250_000, 1_000_000, (4, 6), (8, 32)),
    Band("high", SINGLE_NODE_MAX_WRITES, SINGLE_NODE_MAX_SERIES, (8, None), (32, None)),
)


def series(farms: int, devices_per_farm: int) -> int:
    """Unique series: each device's value fields, and each farm and zone's window statistics."""
    return (farms * devices_per_farm * len(VALUE_FIELDS)
            + farms * disks.ZONES_PER_FARM * disks.WINDOW_FIELDS)


def band(writes: float, unique_series: int) -> Band:
    """The lowest band whose bounds hold both figures; beyond the last, a single node is not enough."""
    for candidate in BANDS:
        if writes < candidate.max_writes and unique_series < candidate.max_series:
            return candidate
    raise sizing.SizingError(
        f"{writes:,.0f} field writes/s and {unique_series:,} series exceed one InfluxDB node "
        f"({SINGLE_NODE_MAX_WRITES:,} writes/s, {SINGLE_NODE_MAX_SERIES:,} series: {GUIDELINES})")


def _span(bounds: tuple[int, int | None], unit: str) -> str:
    least, most = bounds
    return f"{least}+ {unit}" if most is None else f"{least}-{most} {unit}"


@dataclass(frozen=True)
class InfluxDbLoad:
    """InfluxDB's VM against its band of the guidelines."""

    machine: sizing.MachineShape
    writes: float
    series: int
    band: Band

    def warnings(self) -> list[str]:
        least_cores, _ = self.band.cores
        least_gb, most_gb = self.band.memory_gb
        found = []
        if self.machine.vcpus < least_cores:
            found.append(f"{self.machine.name} has {self.machine.vcpus} vCPU, the {self.band.name} band "
                         f"asks for {least_cores} or more (hydrostream:influxdb.machine)")
        if self.machine.memory_gb < least_gb:
            found.append(f"{self.machine.name} has {self.machine.memory_gb:g} GB, the {self.band.name} band "
                         f"asks for {least_gb} GB or more (hydrostream:influxdb.machine)")
        if most_gb is not None and self.machine.memory_gb > OVERSIZE_FACTOR * most_gb:
            found.append(f"{self.machine.name} has {self.machine.memory_gb:g} GB, more than "
                         f"{OVERSIZE_FACTOR:g}x the {self.band.name} band's {most_gb} GB: a smaller machine "
                         f"would do (hydrostream:influxdb.machine)")
        return found

    def report(self) -> list[str]:
        lines = [
            "influxdb machine:",
            f"  load:              {self.writes:,.0f} field writes/s, {self.series:,} series: the "
            f"{self.band.name} band of {GUIDELINES}",
            f"  band asks for:     {_span(self.band.cores, 'cores')}, {_span(self.band.memory_gb, 'GB')}",
            f"  machine:           {self.machine.name}: {self.machine.vcpus} vCPU, "
            f"{self.machine.memory_gb:g} GB",
        ]
        return lines + [f"  warning:           {warning}" for warning in self.warnings()]


def influxdb_load(machine: sizing.MachineShape, rate: int, farms: int, devices_per_farm: int,
                  slide_s: float) -> InfluxDbLoad:
    """InfluxDB's VM against the stack's load (field writes and series) in the guidelines' bands."""
    writes = disks.influxdb_values_per_second(rate, farms, slide_s)
    unique_series = series(farms, devices_per_farm)
    return InfluxDbLoad(machine, writes, unique_series, band(writes, unique_series))
