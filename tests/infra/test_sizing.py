"""Sizing catalog: shapes refused for the right reason, executors that fit YARN, heaps from VM size."""

import pytest

from infra import plan, sizing
from infra.settings import parse_settings

GIB = 1024


@pytest.mark.parametrize("name", ["e2-micro", "e2-small", "e2-medium"])
def test_shared_core_shapes_are_refused_everywhere(name):
    for check in (sizing.worker_shape, sizing.master_shape, sizing.service_vm_shape):
        with pytest.raises(sizing.SizingError, match="shared-core"):
            check(name)


def test_the_seeds_e2_medium_worker_is_refused_with_the_exit_143_story():
    with pytest.raises(sizing.SizingError, match=r"e2-medium is a shared-core type.*exit 143"):
        sizing.worker_shape("e2-medium")


def test_workers_need_8_gb_and_masters_room_for_two_drivers():
    assert sizing.MIN_WORKER_MB == 8 * GIB
    assert sizing.worker_shape("n2-standard-2").memory_mb == 8 * GIB
    # A master keeps 4 GB for its daemons and 1 GB for each of the two drivers.
    assert sizing.master_shape("e2-standard-2").memory_mb == 8 * GIB
    with pytest.raises(sizing.SizingError, match="e2-medium"):
        sizing.master_shape("e2-medium")


def test_shape_table_has_real_machine_figures():
    # Published Compute Engine figures: standard = 4 GB per vCPU, highmem = 8 GB per vCPU.
    assert (sizing.SHAPES["n2-standard-8"].vcpus, sizing.SHAPES["n2-standard-8"].memory_mb) == (8, 32 * GIB)
    assert (sizing.SHAPES["n2-highmem-4"].vcpus, sizing.SHAPES["n2-highmem-4"].memory_mb) == (4, 32 * GIB)
    assert (sizing.SHAPES["e2-standard-2"].vcpus, sizing.SHAPES["e2-standard-2"].memory_mb) == (2, 8 * GIB)
    assert sizing.SHAPES["e2-medium"].memory_mb == 4 * GIB
    with pytest.raises(sizing.SizingError, match="unknown machine type"):
        sizing.shape("n2-standard-3")


def test_n2_standard_4_workers_by_hand():
    # 16384 MB worker: reserve max(2048, 16384 // 5 = 3276) -> 13108, down to a 256 multiple -> 13056.
    # 4 vCPUs -> 2 executors of 2 cores; 13056 / 2 = 6528 -> 6400 per container;
    # overhead max(384, 6400 / 11 = 581.8 -> 640) -> heap 5760.
    s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES["n2-standard-4"], 2)
    assert s.yarn_memory_mb == 13056
    assert (s.executor_cores, s.executors_per_worker) == (2, 2)
    assert (s.executor_memory_mb, s.executor_overhead_mb) == (5760, 640)
    # 4 slots: 1 for the two application masters, 1 producer executor, 2 consumer executors.
    assert (s.consumer_executors, s.producer_executors) == (2, 1)
    assert s.shuffle_partitions == 8
    # Master: (16384 - 4096) / 2 drivers = 6144.
    assert s.driver_memory_mb == 6144


def test_prod_shapes_by_hand():
    # n2-standard-8: 32768 - 6553 = 26215 -> 26112; 2 executors x 4 cores; 13056 per container;
    # overhead 13056 / 11 = 1186.9 -> 1216; heap 11840. 3 workers: 6 slots -> 4 consumer executors.
    s = sizing.spark_sizing(sizing.SHAPES["n2-highmem-4"], sizing.SHAPES["n2-standard-8"], 3)
    assert (s.executor_memory_mb, s.executor_overhead_mb, s.executor_cores) == (11840, 1216, 4)
    assert s.consumer_executors == 4
    assert s.shuffle_partitions == 32
    assert s.driver_memory_mb == 8192  # capped: (32768 - 4096) / 2 would be 14336


@pytest.mark.parametrize("worker", [n for n, s in sizing.SHAPES.items() if not s.shared_core])
@pytest.mark.parametrize("workers", [2, 3, 5])
def test_executors_always_fit_yarns_share_of_the_worker(worker, workers):
    shape = sizing.SHAPES[worker]
    try:
        s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], shape, workers)
    except sizing.SizingError as error:
        assert "at least 3" in str(error)
        assert workers * (shape.vcpus // min(shape.vcpus, 2)) < 3
        return
    container = s.executor_memory_mb + s.executor_overhead_mb
    assert container % sizing.YARN_ALLOCATION_MB == 0
    assert s.executors_per_worker * container <= s.yarn_memory_mb <= shape.memory_mb - 2 * GIB
    assert s.executors_per_worker * s.executor_cores <= shape.vcpus
    assert s.executor_overhead_mb >= max(384, 0.1 * s.executor_memory_mb)
    total_slots = workers * s.executors_per_worker
    assert s.consumer_executors + s.producer_executors + sizing.AM_SLOTS == total_slots
    assert s.cluster_properties()["yarn:yarn.nodemanager.resource.memory-mb"] == str(s.yarn_memory_mb)
    props = s.job_properties(s.consumer_executors)
    assert props["spark.executor.memory"] == f"{s.executor_memory_mb}m"
    assert props["spark.sql.shuffle.partitions"] != "200"


def test_one_worker_is_refused():
    with pytest.raises(sizing.SizingError, match="at least 2 primary workers"):
        sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES["n2-standard-8"], 1)


def test_broker_heap_and_database_memory_limit_from_vm_size():
    assert sizing.kafka_heap_mb(sizing.SHAPES["e2-standard-2"]) == 2048        # 8 GB / 4
    assert sizing.kafka_heap_mb(sizing.SHAPES["n2-standard-4"]) == 4096        # 16 GB / 4
    assert sizing.kafka_heap_mb(sizing.SHAPES["n2-highmem-8"]) == 6144         # 64 GB / 4, capped at 6 GB
    assert sizing.influxdb_memory_limit_mb(sizing.SHAPES["e2-standard-2"]) == 4864   # 8192 * 0.6 = 4915
    assert sizing.influxdb_memory_limit_mb(sizing.SHAPES["n2-highmem-4"]) == 19456   # 32768 * 0.6 = 19660


def test_prod_is_at_least_staging_is_at_least_dev():
    def capacity(stack):
        s = parse_settings(stack, plan.stack_config(stack))
        spark = s.spark
        return (spark.consumer_executors * spark.executor_cores,
                spark.consumer_executors * spark.executor_memory_mb,
                spark.driver_memory_mb,
                s.kafka.machine.memory_mb, s.influxdb.machine.memory_mb, s.monitoring.machine.memory_mb,
                s.kafka.disk_gb, s.influxdb.disk_gb)

    dev, staging, prod = capacity("dev"), capacity("staging"), capacity("prod")
    assert all(p >= s >= d for p, s, d in zip(prod, staging, dev, strict=True)), (dev, staging, prod)
    assert prod > staging
