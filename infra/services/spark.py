"""The local Spark container's spec: both jobs' drivers in local mode, sized by the sizing catalog.

On GCP the jobs run on Dataproc, sized by `sizing.spark_sizing` (infra/gcp/dataproc.py); on the local
stack one container of the catalog's Spark image runs both drivers, whose executors live inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import catalog, sizing


@dataclass(frozen=True)
class LocalSparkSpec:
    """The Spark service of the local stack: its container memory, each driver's heap, shuffle partitions."""

    service: catalog.Service
    memory_mb: int                 # the container: both drivers and their Python workers
    driver_memory_mb: int          # per job
    shuffle_partitions: int

    def __post_init__(self) -> None:
        # Each driver's heap plus as much again off-heap (metaspace, Netty, Python workers).
        needed = 2 * 2 * self.driver_memory_mb
        if self.memory_mb < needed:
            raise ValueError(f"the Spark container needs at least {needed} MB for two "
                             f"{self.driver_memory_mb} MB drivers, got {self.memory_mb}")
        if self.shuffle_partitions < 1:
            raise ValueError(f"shuffle_partitions must be at least 1, got {self.shuffle_partitions}")


def local_spark_spec() -> LocalSparkSpec:
    """The local stack's Spark container, from the sizing catalog."""
    return LocalSparkSpec(service=catalog.SPARK, memory_mb=sizing.local_container_mb(catalog.SPARK.name),
                          driver_memory_mb=sizing.LOCAL_DRIVER_MEMORY_MB,
                          shuffle_partitions=sizing.LOCAL_SHUFFLE_PARTITIONS)
