"""Sizing catalog: shapes refused for the right reason, executors that fit YARN, heaps from VM size."""

import dataclasses

import pytest

from infra import sizing
from infra.model import derive
from infra.settings import SettingsError, parse_settings
from infra.tools import mocks

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
    # The daemons' reservation, added up by hand from the documented table: 1024 OS, 1024 NameNode,
    # 512 SecondaryNameNode, 1024 ResourceManager, 512 timeline, 512 MR history, 512 Spark history,
    # 1024 Hive, 256 MySQL, 512 Knox, 512 Dataproc agent = 7424 MB.
    assert sizing.MASTER_DAEMONS_MB == 7424
    # Two drivers of at least 1024 MB heap + 384 MB overhead + 512 MB Python: 7424 + 2 x 1920 = 11264 MB.
    with pytest.raises(sizing.SizingError, match=r"dataproc\.master e2-standard-2 .*at least 11264 MB"):
        sizing.master_shape("e2-standard-2")
    assert sizing.master_shape("e2-highmem-2").memory_mb == 16 * GIB
    with pytest.raises(sizing.SizingError, match="e2-medium"):
        sizing.master_shape("e2-medium")


def test_a_master_too_small_for_both_drivers_is_refused_by_the_settings_naming_the_key():
    config = {**mocks.stack_config("dev"), "hydrostream:dataproc": {"master": "n2-standard-2"}}
    with pytest.raises(SettingsError, match=r"hydrostream:dataproc\.master = 'n2-standard-2'.*both drivers"):
        parse_settings("dev", config)


@pytest.mark.parametrize(("master", "heap", "overhead"), [
    # 16384 MB: (16384 - 7424) / 2 = 4480, less 512 Python = 3968 per driver JVM;
    # 3584 heap + max(384, 358) overhead = 3968.
    ("e2-standard-4", 3584, 384),
    # 16384 MB as well (highmem-2): the same figures.
    ("e2-highmem-2", 3584, 384),
    # 32768 MB: (32768 - 7424) / 2 - 512 = 12160; 11008 + 1101 -> 1152 = 12160 fits, 11264 + 1152 does
    # not; capped at 8192 (overhead 819 -> 832).
    ("n2-highmem-4", 8192, 832),
    # 65536 MB: far more than 8192 per driver, capped too.
    ("n2-standard-16", 8192, 832),
])
def test_driver_memory_is_what_the_master_has_left_after_its_daemons(master, heap, overhead):
    s = sizing.spark_sizing(sizing.SHAPES[master], sizing.SHAPES["n2-standard-4"], 2)
    assert (s.driver_memory_mb, s.driver_overhead_mb) == (heap, overhead)
    props = s.job_properties(1)
    assert props["spark.driver.memory"] == f"{heap}m"
    assert props["spark.driver.memoryOverhead"] == f"{overhead}m"
    # Both drivers, their overhead and their Python processes fit beside the daemons.
    assert sizing.MASTER_DAEMONS_MB + 2 * (heap + overhead + 512) <= sizing.SHAPES[master].memory_mb


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
    # An AM is 512 + 384 = 896 -> 1024 MB. 4 vCPUs -> 2 executors of 2 cores;
    # (13056 - 1024) / 2 = 6016 -> 5888 per container; overhead max(384, 5888 / 11 = 535.3 -> 576) -> 5312.
    s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES["n2-standard-4"], 2)
    assert s.yarn_memory_mb == 13056
    assert (s.executor_cores, s.executors_per_worker) == (2, 2)
    assert (s.executor_memory_mb, s.executor_overhead_mb) == (5312, 576)
    # Both AMs on one worker leave it 11008 MB: one executor there, two on the other = 3 in the worst case.
    assert (s.consumer_executors, s.producer_executors) == (2, 1)
    assert s.shuffle_partitions == 8
    assert s.driver_memory_mb == 3584
    props = s.job_properties(2)
    assert (props["spark.yarn.am.memory"], props["spark.yarn.am.memoryOverhead"],
            props["spark.yarn.am.cores"]) == ("512m", "384m", "1")
    assert props["spark.submit.deployMode"] == "client"
    assert s.cluster_properties()["capacity-scheduler:yarn.scheduler.capacity.resource-calculator"] == \
        DEFAULT_CALCULATOR


def test_prod_shapes_by_hand():
    # n2-standard-8: 32768 - 6553 = 26215 -> 26112; 2 executors x 4 cores; (26112 - 1024) / 2 = 12544
    # per container; overhead 12544 / 11 = 1140.4 -> 1152; heap 11392. Worst case, both AMs on one
    # worker: 24064 // 12544 = 1 there + 2 + 2 = 5 executors -> 4 consumer executors.
    s = sizing.spark_sizing(sizing.SHAPES["n2-highmem-4"], sizing.SHAPES["n2-standard-8"], 3)
    assert (s.executor_memory_mb, s.executor_overhead_mb, s.executor_cores) == (11392, 1152, 4)
    assert s.consumer_executors == 4
    assert s.shuffle_partitions == 32
    assert s.driver_memory_mb == 8192  # capped: the master would give 11008


@pytest.mark.parametrize("worker", [n for n, s in sizing.SHAPES.items() if not s.shared_core])
@pytest.mark.parametrize("workers", [2, 3, 5])
def test_executors_always_fit_yarns_share_of_the_worker(worker, workers):
    shape = sizing.SHAPES[worker]
    try:
        s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], shape, workers)
    except sizing.SizingError as error:
        assert "need at least 2" in str(error)
        # Only 2 vCPU workers, two of them: one executor each, one of which an AM may crowd out.
        assert workers == 2 and shape.vcpus == 2
        return
    container = s.executor_memory_mb + s.executor_overhead_mb
    assert container % sizing.YARN_ALLOCATION_MB == 0
    assert s.executors_per_worker * container <= s.yarn_memory_mb <= shape.memory_mb - 2 * GIB
    assert s.executors_per_worker * s.executor_cores <= shape.vcpus
    assert s.executor_overhead_mb >= max(384, 0.1 * s.executor_memory_mb)
    # The executors and both AMs (1024 MB each) fit YARN's memory of the whole cluster.
    assert (s.consumer_executors + s.producer_executors) * container + 2 * 1024 <= workers * s.yarn_memory_mb
    assert s.cluster_properties()["yarn:yarn.nodemanager.resource.memory-mb"] == str(s.yarn_memory_mb)
    props = s.job_properties(s.consumer_executors)
    assert props["spark.executor.memory"] == f"{s.executor_memory_mb}m"
    assert props["spark.sql.shuffle.partitions"] != "200"


def test_one_worker_is_refused():
    with pytest.raises(sizing.SizingError, match="at least 2 primary workers"):
        sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES["n2-standard-8"], 1)


def test_broker_heap_and_database_memory_limit_from_vm_size():
    def memory(shape: str) -> int:
        return sizing.SHAPES[shape].memory_mb

    assert sizing.kafka_heap_mb(memory("e2-standard-2")) == 2048              # 8 GB / 4
    assert sizing.kafka_heap_mb(memory("n2-standard-4")) == 4096              # 16 GB / 4
    assert sizing.kafka_heap_mb(memory("n2-highmem-8")) == 6144               # 64 GB / 4, capped at 6 GB
    assert sizing.influxdb_memory_limit_mb(memory("e2-standard-2")) == 4864   # 8192 * 0.6 = 4915
    assert sizing.influxdb_memory_limit_mb(memory("n2-highmem-4")) == 19456   # 32768 * 0.6 = 19660


def test_prod_is_at_least_staging_is_at_least_dev():
    def capacity(stack):
        s = parse_settings(stack, mocks.stack_config(stack))
        spark = derive(s).gcp.spark
        return (spark.consumer_executors * spark.executor_cores,
                spark.consumer_executors * spark.executor_memory_mb,
                spark.driver_memory_mb,
                s.kafka.machine.memory_mb, s.influxdb.machine.memory_mb, s.monitoring.machine.memory_mb,
                s.kafka.disk_gb, s.influxdb.disk_gb)

    dev, staging, prod = capacity("dev"), capacity("staging"), capacity("prod")
    assert all(p >= s >= d for p, s, d in zip(prod, staging, dev, strict=True)), (dev, staging, prod)
    assert prod > staging


# --- YARN placement, modelled from the properties the cluster and the jobs really get -----------------

DEFAULT_CALCULATOR = "org.apache.hadoop.yarn.util.resource.DefaultResourceCalculator"
DOMINANT_CALCULATOR = "org.apache.hadoop.yarn.util.resource.DominantResourceCalculator"
CALCULATOR_KEY = "capacity-scheduler:yarn.scheduler.capacity.resource-calculator"
WORKER_SHAPES = [n for n in sizing.SHAPES if not sizing.SHAPES[n].shared_core
                 and sizing.SHAPES[n].memory_mb >= sizing.MIN_WORKER_MB]


def mb(value: str) -> int:
    """A Spark memory string (`512m`, `2g`) in MB."""
    units = {"m": 1, "g": 1024}
    return int(value[:-1]) * units[value[-1]]


def yarn_request(memory_mb: int, minimum_mb: int) -> int:
    # The scheduler normalizes every request up to a multiple of yarn.scheduler.minimum-allocation-mb.
    return -(-memory_mb // minimum_mb) * minimum_mb


def containers(job: dict[str, str], minimum_mb: int) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(AM (MB, vcores), executor (MB, vcores), executors) as YARN sees one client-mode job."""
    # Spark's defaults when a job does not set them: spark.yarn.am.memory 512m, its overhead
    # max(384 MB, 10%), spark.yarn.am.cores 1; executor overhead max(384 MB, 10%).
    am_heap = mb(job.get("spark.yarn.am.memory", "512m"))
    am_overhead = mb(job["spark.yarn.am.memoryOverhead"]) if "spark.yarn.am.memoryOverhead" in job \
        else max(384, am_heap // 10)
    am = (yarn_request(am_heap + am_overhead, minimum_mb), int(job.get("spark.yarn.am.cores", "1")))
    heap = mb(job["spark.executor.memory"])
    overhead = mb(job["spark.executor.memoryOverhead"]) if "spark.executor.memoryOverhead" in job \
        else max(384, heap // 10)
    executor = (yarn_request(heap + overhead, minimum_mb), int(job["spark.executor.cores"]))
    return am, executor, int(job["spark.executor.instances"])


def stuck_placement(s: sizing.SparkSizing, workers: int) -> str | None:
    """A placement YARN may choose that leaves a container pending forever, or None when there is none.

    Every order is explored: the consumer's AM first, each job's executors after its AM, the producer's
    AM at any point after the consumer's, each container on any worker with room. Streaming jobs never
    release a container, so a request that fits no worker now never will.
    """
    cluster = s.cluster_properties()
    node = (int(cluster["yarn:yarn.nodemanager.resource.memory-mb"]),
            int(cluster["yarn:yarn.nodemanager.resource.cpu-vcores"]))
    minimum = int(cluster["yarn:yarn.scheduler.minimum-allocation-mb"])
    # Hadoop's capacity scheduler counts memory only unless the Dominant calculator is configured.
    counts_vcores = cluster.get(CALCULATOR_KEY, DEFAULT_CALCULATOR) == DOMINANT_CALCULATOR
    consumer = containers(s.job_properties(s.consumer_executors), minimum)
    producer = containers(s.job_properties(s.producer_executors), minimum)
    assert consumer[0] == producer[0] and consumer[1] == producer[1]  # the model below relies on it
    am, executor = consumer[0], consumer[1]

    def fits(free: tuple[int, int], want: tuple[int, int]) -> bool:
        return free[0] >= want[0] and (not counts_vcores or free[1] >= want[1])

    seen: set = set()

    def explore(free: tuple, consumer_left: int | None, producer_left: int | None) -> str | None:
        # *_left: None while that job's AM is not placed yet, else its executors still to place.
        key = (free, consumer_left, producer_left)
        if key in seen:
            return None
        seen.add(key)
        requests = []
        if consumer_left is None:
            requests.append(("consumer AM", am, (consumer[2], producer_left)))
        else:
            if consumer_left:
                requests.append(("consumer executor", executor, (consumer_left - 1, producer_left)))
            if producer_left is None:
                requests.append(("producer AM", am, (consumer_left, producer[2])))
            elif producer_left:
                requests.append(("producer executor", executor, (consumer_left, producer_left - 1)))
        for what, want, (c_left, p_left) in requests:
            hosts = sorted({i for i, f in enumerate(free) if fits(f, want)}, key=lambda i: free[i])
            if not hosts:
                return f"{what} {want} fits no worker; free (MB, vcores) per worker: {free}"
            for i in {free[i]: i for i in hosts}.values():
                after = list(free)
                after[i] = (free[i][0] - want[0], free[i][1] - want[1])
                found = explore(tuple(sorted(after)), c_left, p_left)
                if found:
                    return found
        return None

    return explore(tuple([node] * workers), None, None)


@pytest.mark.parametrize("workers", range(2, 7))
@pytest.mark.parametrize("worker", WORKER_SHAPES)
def test_both_application_masters_and_every_executor_fit_in_any_placement(worker, workers):
    try:
        s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES[worker], workers)
    except sizing.SizingError as error:
        # Only a cluster too small for one executor per job plus the AMs may be refused.
        assert "need at least 2" in str(error) and sizing.SHAPES[worker].vcpus * workers <= 4, error
        return
    assert s.consumer_executors >= 1 and s.producer_executors >= 1
    assert stuck_placement(s, workers) is None, stuck_placement(s, workers)


def test_the_placement_model_finds_a_stuck_executor():
    # Two AMs on one 13056 MB node leave 11008 MB: one 5888 MB executor there and two on the other
    # node; a fourth executor stays pending forever.
    s = sizing.spark_sizing(sizing.SHAPES["n2-standard-4"], sizing.SHAPES["n2-standard-4"], 2)
    too_many = dataclasses.replace(s, consumer_executors=s.consumer_executors + 1)
    assert "fits no worker" in stuck_placement(too_many, 2)
