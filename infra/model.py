"""The stack model: every fact a stack's components need, derived once from its checked settings.

`derive(settings)` is the only place the settings are read after checking: it computes each name, VM
shape, service spec (heap, GOMEMLIMIT, topics, environment), Spark size and property, job flag, the
jobs release and the consumer's capacity, once. The result is plain frozen data: printable
(`StackModel.summary`, which `make plan` shows), testable without Pulumi, and what the stacks'
wiring (infra/gcp/stack.py, infra/local/stack.py) turns into each component's Args. Components and
renderers import neither this module nor infra/settings.py: each names, in its Args, only what it uses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydrostream_jobs import contract, durations

from infra import capacity, catalog, cost, disks, influxdb_load, right_size, sizing
from infra.gcp import dataproc, storage
from infra.gcp.jobs import Restarts
from infra.gcp.kafka import broker_names
from infra.gcp.service_vm import instance_name
from infra.job_commands import JobFlags
from infra.release.bundle import JOBS_DIR, Bundle, build_bundle
from infra.render.alertmanager_config import Receivers
from infra.render.prometheus_volume import AlertRules
from infra.services import ServiceSpecs
from infra.services.influxdb import influxdb_spec
from infra.services.kafka import kafka_spec
from infra.services.spark import LocalSparkSpec, local_spark_spec
from infra.settings import SettingsError, StackSettings

# The freshness objective (issue 25): a reading is in InfluxDB within the trigger interval plus this margin
# of its event time (it waits up to one trigger for its micro-batch; the margin covers the batch itself,
# Kafka and the write), for FRESHNESS_TARGET of the readings.
FRESHNESS_MARGIN_S = 30
FRESHNESS_TARGET = 0.99


@dataclass(frozen=True)
class Vm:
    """A service VM: its name (also its internal DNS name), zone, shape and data disk."""

    name: str
    zone: str
    machine: sizing.MachineShape
    disk_gb: int


@dataclass(frozen=True)
class Cluster:
    """The Dataproc cluster: shapes, worker count, disks and its properties (the derived YARN/Spark sizes)."""

    name: str
    master: sizing.MachineShape
    worker: sizing.MachineShape
    workers: int
    boot_disk_gb: int
    idle_delete_minutes: int | None
    properties: Mapping[str, str]


@dataclass(frozen=True)
class Jobs:
    """The streaming jobs: their flags, the release to deploy and, on Dataproc, their restarts and sizes."""

    flags: JobFlags
    release_pin: str | None             # None: the working tree's release (dev, local)
    restarts: Restarts
    consumer_properties: Mapping[str, str]
    producer_properties: Mapping[str, str]


@dataclass(frozen=True)
class Gcp:
    """What only the GCP target has: the project, the network, the VMs, the cluster and its sizes."""

    project: str
    region: str
    zone: str
    subnet_cidr: str
    grafana_source_ranges: tuple[str, ...]
    brokers: tuple[Vm, ...]             # broker 1 first, in the stack's zone; the others in the next zones
    min_insync_replicas: int
    influxdb: Vm
    monitoring: Vm
    cluster: Cluster
    spark: sizing.SparkSizing
    capacity: capacity.ConsumerCapacity
    right_size: right_size.Verdict | None   # the cluster against the cheapest for the load; None: unpriced
    disk_fills: tuple[disks.DiskFill, ...]  # the brokers' and InfluxDB's data disks at the end of retention
    influxdb_load: influxdb_load.InfluxDbLoad  # InfluxDB's VM against its band of InfluxData's guidelines
    snapshot_retention_days: int        # the daily snapshots of every data disk
    backup_retention_days: int          # InfluxDB's daily backups in the backup bucket

    def bucket(self, purpose: str) -> str:
        """A bucket's name (infra.roles.Bucket: the purposes)."""
        return storage.bucket_name(self.project, purpose)


@dataclass(frozen=True)
class Local:
    """What only the local Docker target has."""

    bind_address: str                   # published ports listen on this loopback address only
    spark: LocalSparkSpec


@dataclass(frozen=True)
class StackModel:
    stack: str
    target: str                         # "gcp" or "local"
    labels: Mapping[str, str]
    protect: bool
    services: ServiceSpecs
    receivers: Receivers
    receiver_secrets: tuple[str, ...]   # the catalog receiver secrets the receivers need
    jobs: Jobs
    catch_up: capacity.CatchUp | None   # how a backlog drains; None: the consumer runs once (available-now)
    alerts: AlertRules                  # the stack's values in its alert rules
    bundle: Bundle = field(repr=False)  # the working tree's jobs release (its digest names it)
    gcp: Gcp | None = None
    local: Local | None = None

    @property
    def retention_s(self) -> float:
        """How long the readings topic keeps a reading (seconds): the longest outage nothing is lost in."""
        (readings,) = [t for t in self.services.kafka.topics if t.name == contract.READINGS_TOPIC]
        return readings.retention_ms / 1000

    def summary(self) -> dict[str, Any]:
        """The sizes the model chose, as `make plan` shows them (tests/inventories, `sizing:`)."""
        if self.gcp is None:
            return {}
        gcp = self.gcp

        def shape(machine: sizing.MachineShape) -> str:
            return f"{machine.name} ({machine.vcpus} vCPU, {machine.memory_mb} MB)"

        return {
            **dataclasses.asdict(gcp.spark),
            "dataproc_shapes": gcp.right_size.reason if gcp.right_size else "pinned in the stack file",
            "dataproc_master": shape(gcp.cluster.master),
            "dataproc_worker": f"{gcp.cluster.workers} x {shape(gcp.cluster.worker)}",
            "kafka": {"machine": shape(gcp.brokers[0].machine), "heap_mb": self.services.kafka.heap_mb},
            "influxdb": {"machine": shape(gcp.influxdb.machine),
                         "gomemlimit_mb": self.services.influxdb.memory_limit_mb,
                         "load_band": gcp.influxdb_load.band.name},
            "monitoring": {"machine": shape(gcp.monitoring.machine)},
        }


Shapes = tuple[sizing.MachineShape, sizing.MachineShape, int]


def _dataproc_shapes(settings: StackSettings, region: str) -> tuple[Shapes, right_size.Verdict | None]:
    """The cluster's master, worker and worker count: those the stack pins, the cheapest for the load
    (infra/right_size.py) for those it leaves out; and the verdict on them (None: unpriced and pinned)."""
    cluster = settings.dataproc
    need = right_size.need(settings.jobs.rate, settings.jobs.catch_up_read_rate)
    pins = {"master": cluster.master, "worker": cluster.worker, "workers": cluster.workers}
    try:
        priced = (cluster.boot_disk_gb, dataproc.BOOT_DISK_TYPE, region, cost.load_prices())
        configured = right_size.cheapest(need, *priced, cluster.spare_workers, **pins)
        try:
            choice = right_size.cheapest(need, *priced, cluster.spare_workers)
        except sizing.SizingError:
            choice = configured  # pinned beyond what the search tries (more than MAX_WORKERS workers)
        verdict = right_size.Verdict(need=need, spare=cluster.spare_workers, pinned=cluster.pinned,
                                     configured=configured, choice=choice)
    except (cost.PriceError, sizing.SizingError) as error:
        if len(cluster.pinned) == 3 and isinstance(error, cost.PriceError):
            # The plan's cost report says what is missing; the pinned cluster was checked by the settings.
            return (cluster.master, cluster.worker, cluster.workers), None
        keys = ", ".join(f"hydrostream:dataproc.{key}" for key in ("master", "worker", "workers"))
        raise SettingsError(
            f"stack {settings.stack!r}: invalid configuration; nothing was deployed:\n  hydrostream:dataproc "
            f"= {dict((k, getattr(v, 'name', v)) for k, v in pins.items() if v is not None)!r}: expected "
            f"shapes that carry the load: {error}; pin {keys} or "
            + ("price the region" if isinstance(error, cost.PriceError) else "lower hydrostream:jobs.rate")
        ) from None
    chosen = verdict.configured
    return (chosen.master, chosen.worker, chosen.workers), verdict


def _gcp(settings: StackSettings) -> Gcp:
    gcp, stack, kafka = settings.gcp, settings.stack, settings.kafka
    assert gcp is not None
    (master, worker, workers), verdict = _dataproc_shapes(settings, gcp.region)
    spark = sizing.spark_sizing(master, worker, workers)
    brokers = tuple(Vm(name, zone, kafka.machine, kafka.disk_gb) for name, zone in zip(
        broker_names(stack, kafka.brokers), settings.broker_zones, strict=True))
    cluster, properties = settings.dataproc, dataproc.cluster_properties(spark)
    return Gcp(
        project=gcp.project, region=gcp.region, zone=gcp.zone,
        subnet_cidr=settings.network.subnet_cidr,
        grafana_source_ranges=settings.network.grafana_source_ranges,
        brokers=brokers, min_insync_replicas=kafka.min_isr,
        influxdb=Vm(instance_name(stack, catalog.TSDB), gcp.zone, settings.influxdb.machine,
                    settings.influxdb.disk_gb),
        monitoring=Vm(instance_name(stack, catalog.MONITORING), gcp.zone, settings.monitoring.machine,
                      settings.monitoring.disk_gb),
        cluster=Cluster(dataproc.cluster_name(stack), master, worker, workers,
                        cluster.boot_disk_gb, cluster.idle_delete_minutes, properties),
        spark=spark,
        capacity=capacity.consumer_capacity(spark, settings.jobs.rate),
        right_size=verdict,
        disk_fills=(
            disks.kafka_fill(settings.jobs.rate, kafka.retention_hours, kafka.disk_gb),
            disks.influxdb_fill(settings.jobs.rate, settings.jobs.farms,
                                durations.milliseconds(settings.jobs.slide) / 1000,
                                settings.influxdb.retention_days, settings.influxdb.disk_gb),
        ),
        influxdb_load=_influxdb_load(settings),
        snapshot_retention_days=settings.backups.snapshot_retention_days,
        backup_retention_days=settings.backups.influxdb_retention_days,
    )


def _influxdb_load(settings: StackSettings) -> influxdb_load.InfluxDbLoad:
    """InfluxDB's VM against the stack's writes and series; a load beyond one node is refused."""
    jobs = settings.jobs
    try:
        return influxdb_load.influxdb_load(settings.influxdb.machine, jobs.rate, jobs.farms,
                                           jobs.devices_per_farm, durations.milliseconds(jobs.slide) / 1000)
    except sizing.SizingError as error:
        raise SettingsError(
            f"stack {settings.stack!r}: invalid configuration; nothing was deployed:\n  hydrostream:jobs "
            f"rate {jobs.rate}, farms {jobs.farms}, devices_per_farm {jobs.devices_per_farm}: {error}"
        ) from None


def trigger_seconds(trigger: str) -> int:
    """The micro-batch interval in whole seconds (rounded up); 0 for available-now (batches back to back)."""
    return 0 if trigger == "available-now" else -(-durations.milliseconds(trigger) // 1000)


def alert_rules(settings: StackSettings) -> AlertRules:
    """The alert rules' thresholds from the stack's rate, partitions, trigger and watermark.

    - Freshness objective: the trigger plus FRESHNESS_MARGIN_S.
    - A batch slower than the trigger (available-now: than the margin) means the consumer falls behind.
    - Watermark lag: wall clock minus the watermark is normally the watermark delay plus up to one
      trigger (the watermark moves with the previous batch's events) plus the batch; beyond the delay
      plus the trigger plus the freshness objective the newest readings are late.
    - Offsets behind: the consumer exposes its largest per-partition lag, and a partition receives
      rate / partitions readings a second: a lag of more than the freshness objective's worth of that
      traffic means the readings at the partition's end can no longer reach InfluxDB within the
      objective (a healthy consumer's lag is at most one trigger's worth).
    """
    jobs = settings.jobs
    trigger_s = trigger_seconds(jobs.trigger)
    objective_s = trigger_s + FRESHNESS_MARGIN_S
    watermark_s = -(-durations.milliseconds(jobs.watermark) // 1000)
    per_partition = jobs.rate / settings.kafka.partitions
    return AlertRules(
        runbook_base_url=settings.alerting.runbook_base_url,
        batch_seconds=trigger_s or FRESHNESS_MARGIN_S,
        watermark_lag_seconds=watermark_s + trigger_s + objective_s,
        offsets_behind=math.ceil(per_partition * objective_s),
        freshness_objective_seconds=objective_s,
        freshness_target=FRESHNESS_TARGET,
    )


def derive(settings: StackSettings) -> StackModel:
    """The stack's model from its checked settings."""
    gcp = _gcp(settings) if settings.target == "gcp" else None
    if gcp is None:
        # The local stack's services are sized by their containers' limits.
        kafka_mb = sizing.local_container_mb(catalog.KAFKA.name)
        influxdb_mb = sizing.local_container_mb(catalog.INFLUXDB.name)
    else:
        kafka_mb, influxdb_mb = gcp.brokers[0].machine.memory_mb, gcp.influxdb.machine.memory_mb
    jobs = settings.jobs
    spark = gcp.spark if gcp is not None else None
    catch_up = None if jobs.trigger == "available-now" else capacity.CatchUp(
        jobs.rate, jobs.read_cap, durations.milliseconds(jobs.trigger) / 1000,
        gcp.capacity.readings_per_second if gcp is not None else None)
    alerts = alert_rules(settings)
    return StackModel(
        stack=settings.stack, target=settings.target, labels=settings.labels, protect=settings.protect,
        services=ServiceSpecs(kafka=kafka_spec(settings.kafka, kafka_mb),
                              influxdb=influxdb_spec(settings.influxdb, influxdb_mb)),
        receivers=settings.alerting,
        receiver_secrets=settings.alerting.secrets,
        jobs=Jobs(
            flags=JobFlags(rate=jobs.rate, farms=jobs.farms, devices_per_farm=jobs.devices_per_farm,
                           trigger=jobs.trigger, window=jobs.window, slide=jobs.slide,
                           watermark=jobs.watermark, read_cap=jobs.read_cap,
                           freshness_objective=f"{alerts.freshness_objective_seconds}s"),
            release_pin=jobs.release,
            restarts=Restarts(jobs.max_failures_per_hour, jobs.max_failures_total),
            consumer_properties=spark.job_properties(spark.consumer_executors) if spark else {},
            producer_properties=spark.job_properties(spark.producer_executors) if spark else {},
        ),
        catch_up=catch_up,
        alerts=alerts,
        bundle=build_bundle(JOBS_DIR),
        gcp=gcp,
        local=Local(settings.local.bind_address, local_spark_spec()) if gcp is None else None,
    )

