"""Consumer capacity: how many readings per second a stack's executors can take, against its configured rate.

Capacity is the consumer's executor cores times the measured readings per second of one core
(`sizing.CONSUMER_READINGS_PER_CORE`). A stack may configure at most half of it: the other half is
what a backlog (a restart, a release handover that re-reads a window plus the watermark, a
replay) is worked off with while new readings keep arriving.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import sizing

# The configured rate may use this share of the capacity; the rest drains backlogs.
MAX_LOAD = 0.5
RATE_KEY = "hydrostream:jobs.rate"
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


def report(capacity: ConsumerCapacity | None, rate: int) -> list[str]:
    """The plan's capacity lines; `None` for a stack without Dataproc executors (local)."""
    if capacity is None:
        cores = -(-rate // int(sizing.CONSUMER_READINGS_PER_CORE * MAX_LOAD))
        return ["capacity:",
                f"  configured rate:   {rate} readings/s ({RATE_KEY})",
                f"  per core:          {sizing.CONSUMER_READINGS_PER_CORE} readings/s "
                f"(measured {sizing.CONSUMER_THROUGHPUT_MEASURED_ON})",
                f"  local mode uses this machine's cores; the rate needs at least {cores} of them"]
    return ["capacity:",
            f"  consumer:          {capacity.executors} executors x {capacity.cores_per_executor} cores "
            f"x {capacity.readings_per_core} readings/s per core = {capacity.readings_per_second} "
            f"readings/s",
            f"  configured rate:   {capacity.rate} readings/s ({RATE_KEY}; at most {capacity.max_rate})",
            f"  headroom:          {capacity.headroom:.1f}x the configured rate"]
