"""The cheapest Dataproc cluster for a stack's load, and whether the configured one is far bigger.

The load is the read rate the consumer needs: the higher of twice the configured rate (capacity.MAX_LOAD)
and the rate that works off the stack's catch-up outage within the time allowed
(`settings.JobsSettings.catch_up_read_rate`). Every candidate is a cluster the sizing accepts (every
executor and both application masters fit in any YARN placement, both drivers on the master, no
shared-core type, at least two workers); the cheapest by the pinned price table (infra/prices.yaml)
whose consumer capacity meets the load is the choice. A single-node cluster is not a candidate: the
sizing places the application masters and executors on workers only.

Configured shapes are kept (a stack may pin them); the plan warns when they give more than
OVERSIZE_FACTOR times the capacity of the choice, with what the choice would save a month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra import capacity, sizing
from infra.cost import PriceTable

# The per-core figure the capacity rests on was measured at 19,000 readings/s on a quiet machine and at
# 9,000 on the same machine under load the same day (sizing.CONSUMER_READINGS_PER_CORE): a factor of
# about two is the figure's own uncertainty. A cluster more than twice as big as the cheapest one that
# meets the load buys more than that uncertainty: the plan says so.
OVERSIZE_FACTOR = 2.0
# How many workers a candidate may have: beyond this, a bigger shape is the better answer.
MAX_WORKERS = 16


@dataclass(frozen=True)
class Cluster:
    """A Dataproc cluster's shapes with what its consumer processes and what it costs a month."""

    master: sizing.MachineShape
    worker: sizing.MachineShape
    workers: int
    capacity: int               # readings per second the consumer's executors process
    monthly: float              # machines, Dataproc premium and boot disks, at the pinned prices

    @property
    def text(self) -> str:
        return f"master {self.master.name}, {self.workers} x {self.worker.name}"


def monthly(master: sizing.MachineShape, worker: sizing.MachineShape, workers: int, boot_disk_gb: int,
            boot_disk_type: str, region: str, prices: PriceTable) -> float:
    """A cluster's monthly price: its machines, the Dataproc premium on every vCPU and its boot disks."""
    hours = prices.hours_per_month
    machines = prices.machine_hour(region, master) + workers * prices.machine_hour(region, worker)
    vcpus = master.vcpus + workers * worker.vcpus
    disks = (1 + workers) * prices.disk_month(region, boot_disk_type, boot_disk_gb)
    return (machines + vcpus * prices.dataproc_premium_per_vcpu_hour) * hours + disks


def cluster(master: sizing.MachineShape, worker: sizing.MachineShape, workers: int, boot_disk_gb: int,
            boot_disk_type: str, region: str, prices: PriceTable) -> Cluster:
    spark = sizing.spark_sizing(master, worker, workers)
    return Cluster(master, worker, workers, capacity.consumer_capacity(spark, 1).readings_per_second,
                   monthly(master, worker, workers, boot_disk_gb, boot_disk_type, region, prices))


def _accepted(check, shape: sizing.MachineShape) -> bool:
    try:
        check(shape.name)
    except sizing.SizingError:
        return False
    return True


def cheapest(need: float, boot_disk_gb: int, boot_disk_type: str, region: str,
             prices: PriceTable) -> Cluster:
    """The cheapest cluster the sizing accepts whose consumer processes `need` readings per second."""
    shapes = sizing.SHAPES.values()
    masters = [m for m in shapes if _accepted(sizing.master_shape, m)]
    # The master only holds the drivers and the daemons: the cheapest that does is the one to pay for.
    master = min(masters, key=lambda m: prices.machine_hour(region, m) + m.vcpus
                 * prices.dataproc_premium_per_vcpu_hour)
    best: Cluster | None = None
    for worker in (w for w in shapes if _accepted(sizing.worker_shape, w)):
        for workers in range(sizing.MIN_DATAPROC_WORKERS, MAX_WORKERS + 1):
            try:
                candidate = cluster(master, worker, workers, boot_disk_gb, boot_disk_type, region, prices)
            except sizing.SizingError:
                continue
            if candidate.capacity >= need:
                if best is None or candidate.monthly < best.monthly:
                    best = candidate
                break  # more workers of this shape only cost more
    if best is None:
        raise sizing.SizingError(f"no cluster of at most {MAX_WORKERS} workers processes {need:,.0f} "
                                 f"readings/s")
    return best


@dataclass(frozen=True)
class Verdict:
    """The configured cluster against the cheapest one for the load."""

    need: float                 # readings per second the consumer must process
    configured: Cluster
    choice: Cluster

    @property
    def oversized(self) -> bool:
        return (self.configured.capacity > OVERSIZE_FACTOR * self.choice.capacity
                and self.configured.monthly > self.choice.monthly)

    def report(self, currency: str) -> list[str]:
        lines = [
            "right-size:",
            f"  load:              {self.need:,.0f} readings/s (the larger of twice the rate and the "
            f"catch-up's read rate)",
            f"  cheapest for it:   {self.choice.text}: {self.choice.capacity:,} readings/s, "
            f"{self.choice.monthly:,.2f} {currency}/month",
            f"  configured:        {self.configured.text}: {self.configured.capacity:,} readings/s, "
            f"{self.configured.monthly:,.2f} {currency}/month",
        ]
        if self.oversized:
            factor = self.configured.capacity / self.choice.capacity
            lines.append(f"  warning:           the configured cluster processes {factor:.0f}x what the "
                         f"cheapest one for this load does (more than {OVERSIZE_FACTOR:g}x); it would save "
                         f"{self.configured.monthly - self.choice.monthly:,.2f} {currency}/month")
        return lines


def need(rate: int, catch_up_read_rate: float) -> float:
    """The read rate the consumer's executors must provide."""
    return max(math.ceil(rate / capacity.MAX_LOAD), catch_up_read_rate)
