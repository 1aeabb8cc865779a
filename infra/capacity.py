"""Consumer capacity: how many readings per second a stack's executors can take, against its configured rate,
and how long a backlog takes to drain.

Capacity is the consumer's executor cores times the measured readings per second of one core
(`sizing.CONSUMER_READINGS_PER_CORE`). A stack may configure at most half of it: the other half is
what a backlog (a restart, a release handover that re-reads a window plus the watermark, a
replay) is worked off with while new readings keep arriving.

A backlog drains at the consumer's read rate minus the readings still arriving. The read rate is
bounded twice: by the capacity, and by the read cap per micro-batch (`jobs.max_offsets_per_trigger`)
over the trigger, since a batch that finishes early waits for the next trigger. The settings keep both
at twice the configured rate at least, so every backlog drains; `CatchUp` says how long it takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra import sizing

# The configured rate may use this share of the capacity; the rest drains backlogs.
MAX_LOAD = 0.5
RATE_KEY = "hydrostream:jobs.rate"
READ_CAP_KEY = "hydrostream:jobs.max_offsets_per_trigger"
SIZE_KEYS = ("hydrostream:dataproc.worker", "hydrostream:dataproc.workers")


@dataclass(frozen=True)
class ConsumerCapacity:
    """The consumer's capacity from its executors and the configured rate it has to carry."""

    executors: int
    cores_per_executor: int
    readings_per_core: int
    rate: int                       # hydrostream:jobs.rate, readings per second

    @property
    def cores(self) -> int:
        return self.executors * self.cores_per_executor

    @property
    def readings_per_second(self) -> int:
        return self.cores * self.readings_per_core

    @property
    def max_rate(self) -> int:
        """The highest rate a stack may configure on these executors."""
        return int(self.readings_per_second * MAX_LOAD)

    @property
    def headroom(self) -> float:
        """Capacity over the configured rate: 2.0 is the least a stack may run with."""
        return self.readings_per_second / self.rate

    @property
    def fits(self) -> bool:
        return self.rate <= self.max_rate


@dataclass(frozen=True)
class CatchUp:
    """How fast the consumer works off a backlog: its read rate against the readings still arriving."""

    rate: int                           # readings per second arriving (jobs.rate)
    read_cap: int                       # offsets per micro-batch at most (jobs.max_offsets_per_trigger)
    trigger_s: float                    # the micro-batch interval
    capacity: int | None                # readings per second the executors process; None: not known (local)

    @property
    def read_rate(self) -> float:
        """Readings per second the consumer reads while behind: the cap per trigger, or the capacity."""
        capped = self.read_cap / self.trigger_s
        return capped if self.capacity is None else min(capped, self.capacity)

    @property
    def limited_by(self) -> str:
        if self.capacity is not None and self.capacity < self.read_cap / self.trigger_s:
            return "capacity"
        return "read cap"

    def seconds(self, outage_s: float) -> float:
        """How long the backlog of an `outage_s` outage (every reading of it waiting in Kafka) takes to
        drain once the consumer runs again; infinite when the read rate cannot outrun the arrivals."""
        net = self.read_rate - self.rate
        return math.inf if net <= 0 else self.rate * outage_s / net


def duration_text(seconds: float) -> str:
    """A drain time as an operator reads it: "never", "45 min", "3.5 h"."""
    if math.isinf(seconds):
        return "never (the lag grows)"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def consumer_capacity(spark: sizing.SparkSizing, rate: int,
                      readings_per_core: int = sizing.CONSUMER_READINGS_PER_CORE) -> ConsumerCapacity:
    """The consumer's capacity on the executors `spark` gives it, for a configured `rate`."""
    return ConsumerCapacity(spark.consumer_executors, spark.executor_cores, readings_per_core, rate)


def too_fast(capacity: ConsumerCapacity) -> str:
    """What the settings error says when the configured rate is above half the capacity."""
    return (f"at most {capacity.max_rate} readings/s: half of what the consumer's {capacity.executors} "
            f"executors x {capacity.cores_per_executor} cores process at {capacity.readings_per_core} "
            f"readings/s per core ({capacity.readings_per_second}/s); lower {RATE_KEY} or give the "
            f"consumer more cores with {' or '.join(SIZE_KEYS)}")


def report(capacity: ConsumerCapacity | None, rate: int, catch_up: CatchUp | None = None,
           retention_s: float | None = None) -> list[str]:
    """The plan's capacity lines; `capacity` None for a stack without Dataproc executors (local);
    `catch_up` None for a consumer that runs once over what is there (`available-now`)."""
    if capacity is None:
        cores = -(-rate // int(sizing.CONSUMER_READINGS_PER_CORE * MAX_LOAD))
        lines = ["capacity:",
                 f"  configured rate:   {rate} readings/s ({RATE_KEY})",
                 f"  per core:          {sizing.CONSUMER_READINGS_PER_CORE} readings/s "
                 f"(measured {sizing.CONSUMER_THROUGHPUT_MEASURED_ON})",
                 f"  local mode uses this machine's cores; the rate needs at least {cores} of them"]
    else:
        lines = ["capacity:",
                 f"  consumer:          {capacity.executors} executors x {capacity.cores_per_executor} cores "
                 f"x {capacity.readings_per_core} readings/s per core = {capacity.readings_per_second} "
                 f"readings/s",
                 f"  configured rate:   {capacity.rate} readings/s ({RATE_KEY}; at most {capacity.max_rate})",
                 f"  headroom:          {capacity.headroom:.1f}x the configured rate"]
    if catch_up is not None:
        lines += [f"  catch-up:          reads {catch_up.read_rate:,.0f} readings/s while behind (limited by "
                  f"the {catch_up.limited_by}: {READ_CAP_KEY} {catch_up.read_cap:,} per "
                  f"{catch_up.trigger_s:g} s trigger), {catch_up.read_rate - catch_up.rate:,.0f}/s net",
                  f"  after 1 h down:    drained in {duration_text(catch_up.seconds(3600))}"]
        if retention_s is not None:
            lines.append(f"  a full retention:  {retention_s / 3600:g} h of readings drained in "
                         f"{duration_text(catch_up.seconds(retention_s))}")
    return lines
