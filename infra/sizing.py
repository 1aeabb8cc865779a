"""Sizing catalog: the only place machine shapes live, and every size derived from them.

Dataproc workers, the master, the broker and the database VMs are all sized from these shapes:
YARN's share of a worker, the Spark executors that fit in it, the drivers on the master, the
Kafka heap and InfluxDB's Go memory limit. Shapes that cannot run the pipeline are refused here,
before any resource exists: the seeds' e2-medium workers (shared-core, 4 GB) were killed by YARN
with exit 143 once Spark asked for more memory than the node had.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB_PER_GIB = 1024

# YARN rounds every container up to a multiple of this; we set it on the cluster so fits are exact.
YARN_ALLOCATION_MB = 256
# Spark's floor for executor and driver memory overhead (spark.{executor,driver}.memoryOverhead).
MIN_OVERHEAD_MB = 384
# The capacity scheduler's memory-only calculator (Hadoop's default), set explicitly so the model is
# what runs. A client-mode AM only negotiates containers: counting its vcore (Dominant calculator)
# would idle a whole executor's cores on every worker for a thread that barely runs.
RESOURCE_CALCULATOR = "org.apache.hadoop.yarn.util.resource.DefaultResourceCalculator"

# Each job's YARN application master is its own container on some worker. Dataproc runs a job's driver
# in client mode on the master (spark.submit.deployMode, default `client`: Dataproc's "Dataproc job
# output and logs" page), so the AM is the small launcher sized by spark.yarn.am.*: Spark's defaults
# (512m heap, max(384m, 10%) overhead, 1 core), written out so the reservation is visible and fixed.
JOBS_ON_CLUSTER = 2
DEPLOY_MODE = "client"
AM_MEMORY_MB = 512
AM_OVERHEAD_MB = 384
AM_CORES = 1
# The capacity scheduler starts an application only while its queue's application masters stay within
# this share of the cluster's YARN memory (yarn.scheduler.capacity.maximum-am-resource-percent). It
# always starts the first; the second then waits, ACCEPTED with no container ("Queue's AM resource limit
# exceeded"), as tests/yarn shows on the seeds' workers. Hadoop's default, set explicitly so the model
# is what runs (Dataproc's own value was not read here), and checked: a cluster whose share cannot hold
# both AMs is refused (`check_application_masters`) rather than the share raised. Raised, it would admit
# the AMs of clusters under 20,480 MB of YARN memory, which the executors already crowd (the smallest
# such cluster the sizing would otherwise take, 3 x e2-standard-2, keeps one consumer executor), and the
# real-YARN tests, which run Hadoop's defaults, would no longer show what a deployed cluster does.
AM_RESOURCE_PERCENT = 0.1

# The master's daemons, kept before the drivers (MB each). Dataproc's standard image runs these on the
# master of a standard cluster; no optional component (Jupyter, Zeppelin...) is enabled here.
MASTER_DAEMONS: tuple[tuple[str, int], ...] = (
    ("OS, guest environment and logging/monitoring agents", 1024),
    ("HDFS NameNode", 1024),
    ("HDFS SecondaryNameNode", 512),
    ("YARN ResourceManager", 1024),
    ("YARN timeline / application history server", 512),
    ("MapReduce job history server", 512),
    ("Spark history server", 512),
    ("Hive metastore and HiveServer2", 1024),
    ("MySQL for the Hive metastore", 256),
    ("Component gateway (Knox) and its proxy agent", 512),
    ("Dataproc agent", 512),
)
MASTER_DAEMONS_MB = sum(mb for _, mb in MASTER_DAEMONS)
# Two long-running drivers share the master: the consumer's and the producer's. Each is a JVM (heap
# plus spark.driver.memoryOverhead off-heap) and the PySpark Python process beside it.
DRIVERS_ON_MASTER = 2
PYTHON_DRIVER_MB = 512
MIN_DRIVER_MB = 1024
MAX_DRIVER_MB = 8192
# The producer is a rate source writing to Kafka: one executor is plenty.
PRODUCER_EXECUTORS = 1
MIN_WORKER_MB = 8 * MIB_PER_GIB
MIN_SERVICE_VM_MB = 4 * MIB_PER_GIB
MIN_DATAPROC_WORKERS = 2  # a standard Dataproc cluster has at least two primary workers


class SizingError(ValueError):
    """A machine shape that cannot do the job it was given; the message says why."""


@dataclass(frozen=True)
class MachineShape:
    """A Compute Engine machine type: name, vCPUs and memory."""

    name: str
    vcpus: int
    memory_mb: int
    shared_core: bool = False

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / MIB_PER_GIB


def _family(prefix: str, gb_per_vcpu: int, sizes: tuple[int, ...]) -> dict[str, MachineShape]:
    return {
        f"{prefix}-{n}": MachineShape(f"{prefix}-{n}", n, n * gb_per_vcpu * MIB_PER_GIB) for n in sizes
    }


SHAPES: dict[str, MachineShape] = {
    # Shared-core: listed so they are refused by name with the reason, not as "unknown".
    "e2-micro": MachineShape("e2-micro", 2, 1 * MIB_PER_GIB, shared_core=True),
    "e2-small": MachineShape("e2-small", 2, 2 * MIB_PER_GIB, shared_core=True),
    "e2-medium": MachineShape("e2-medium", 2, 4 * MIB_PER_GIB, shared_core=True),
    **_family("e2-standard", 4, (2, 4, 8, 16)),
    **_family("e2-highmem", 8, (2, 4, 8, 16)),
    **_family("n2-standard", 4, (2, 4, 8, 16, 32)),
    **_family("n2-highmem", 8, (2, 4, 8, 16, 32)),
    **_family("n2d-standard", 4, (2, 4, 8, 16, 32)),
    **_family("n2d-highmem", 8, (2, 4, 8, 16, 32)),
}


def shape(name: str) -> MachineShape:
    """The shape called `name`; a SizingError lists the known ones."""
    try:
        return SHAPES[name]
    except KeyError:
        raise SizingError(f"unknown machine type; known: {', '.join(SHAPES)}") from None


def _usable(name: str, min_mb: int, what: str) -> MachineShape:
    machine = shape(name)
    if machine.shared_core:
        raise SizingError(
            f"{name} is a shared-core type: Dataproc does not support it and YARN kills its executors "
            f"(exit 143); use a standard or highmem type with at least {min_mb // MIB_PER_GIB} GB"
        )
    if machine.memory_mb < min_mb:
        raise SizingError(f"{name} has {machine.memory_gb:g} GB; a {what} needs at least "
                          f"{min_mb // MIB_PER_GIB} GB")
    return machine


def worker_shape(name: str) -> MachineShape:
    """A Dataproc worker shape: dedicated cores and at least 8 GB."""
    return _usable(name, MIN_WORKER_MB, "Dataproc worker")


def master_shape(name: str) -> MachineShape:
    """A Dataproc master shape: its daemons plus the two drivers must fit."""
    machine = _usable(name, MIN_WORKER_MB, "Dataproc master")
    driver_memory_mb(machine)
    return machine


def service_vm_shape(name: str) -> MachineShape:
    """A service VM shape (broker, database, monitoring): dedicated cores and at least 4 GB."""
    return _usable(name, MIN_SERVICE_VM_MB, "service VM")


def _round_down(value: float, step: int) -> int:
    return int(value // step) * step


def _round_up(value: float, step: int) -> int:
    return -int(-value // step) * step


def memory_overhead_mb(heap_mb: int) -> int:
    """Off-heap budget of a Spark JVM: about 10% of the heap, at least Spark's 384 MB floor."""
    return max(MIN_OVERHEAD_MB, _round_up(heap_mb / 10, 64))


def am_container_mb() -> int:
    """What one application master takes from a worker: heap plus overhead, rounded up as YARN does."""
    return _round_up(AM_MEMORY_MB + AM_OVERHEAD_MB, YARN_ALLOCATION_MB)


def driver_memory_mb(master: MachineShape) -> int:
    """Each driver's heap: what the master has left after its daemons, shared by the two drivers.

    Each driver takes heap + memoryOverhead + its Python process; a master that cannot give each at
    least MIN_DRIVER_MB of heap is refused.
    """
    per_driver = (master.memory_mb - MASTER_DAEMONS_MB) // DRIVERS_ON_MASTER - PYTHON_DRIVER_MB
    heap = _round_down(per_driver - MIN_OVERHEAD_MB, YARN_ALLOCATION_MB)
    while heap > 0 and heap + memory_overhead_mb(heap) > per_driver:
        heap -= YARN_ALLOCATION_MB
    if heap < MIN_DRIVER_MB:
        needed = MASTER_DAEMONS_MB + DRIVERS_ON_MASTER * (
            MIN_DRIVER_MB + memory_overhead_mb(MIN_DRIVER_MB) + PYTHON_DRIVER_MB)
        raise SizingError(
            f"dataproc.master {master.name} ({master.memory_mb} MB) cannot hold both drivers: its daemons "
            f"keep {MASTER_DAEMONS_MB} MB and each of the {DRIVERS_ON_MASTER} drivers needs at least "
            f"{MIN_DRIVER_MB} MB heap + {memory_overhead_mb(MIN_DRIVER_MB)} MB overhead + "
            f"{PYTHON_DRIVER_MB} MB Python; use a master with at least {needed} MB")
    return min(MAX_DRIVER_MB, heap)


def guaranteed_executors(yarn_memory_mb: int, container_mb: int, workers: int) -> int:
    """Executors that fit wherever YARN puts the two AMs (both on one worker, or on two).

    Executors are all the same size, so in any arrival order YARN fills a worker up to
    floor(free / container): the worst placement of the AMs decides.
    """
    def per_worker(ams: int) -> int:
        return max(0, (yarn_memory_mb - ams * am_container_mb()) // container_mb)
    if workers < 1:
        return 0
    together = per_worker(JOBS_ON_CLUSTER) + (workers - 1) * per_worker(0)
    if workers < JOBS_ON_CLUSTER:
        return together  # one worker left: both AMs are on it
    apart = JOBS_ON_CLUSTER * per_worker(1) + (workers - JOBS_ON_CLUSTER) * per_worker(0)
    return min(together, apart)


def am_limit_mb(yarn_memory_mb: int, workers: int) -> int:
    """What the capacity scheduler lets the application masters hold on `workers` workers: its share of
    their YARN memory, rounded down (YARN rounds up to the allocation step: this never admits more)."""
    return int(yarn_memory_mb * workers * AM_RESOURCE_PERCENT)


@dataclass(frozen=True)
class SparkSizing:
    """YARN and Spark settings derived from the cluster's shapes; every executor fits by construction."""

    yarn_memory_mb: int            # yarn.nodemanager.resource.memory-mb per worker
    yarn_vcores: int               # yarn.nodemanager.resource.cpu-vcores per worker
    executor_cores: int
    executor_memory_mb: int        # spark.executor.memory
    executor_overhead_mb: int      # spark.executor.memoryOverhead
    executors_per_worker: int
    consumer_executors: int
    producer_executors: int
    driver_memory_mb: int          # spark.driver.memory of each of the two drivers on the master
    driver_overhead_mb: int        # spark.driver.memoryOverhead
    shuffle_partitions: int
    # Each job's YARN application master (one per job, on any worker), reserved in the executor count.
    am_memory_mb: int = AM_MEMORY_MB          # spark.yarn.am.memory
    am_overhead_mb: int = AM_OVERHEAD_MB      # spark.yarn.am.memoryOverhead
    am_cores: int = AM_CORES                  # spark.yarn.am.cores

    @property
    def executor_container_mb(self) -> int:
        return self.executor_memory_mb + self.executor_overhead_mb

    def cluster_properties(self) -> dict[str, str]:
        """Dataproc cluster properties (`prefix:key`) that make YARN's share explicit."""
        return {
            "yarn:yarn.nodemanager.resource.memory-mb": str(self.yarn_memory_mb),
            "yarn:yarn.nodemanager.resource.cpu-vcores": str(self.yarn_vcores),
            "yarn:yarn.scheduler.minimum-allocation-mb": str(YARN_ALLOCATION_MB),
            "yarn:yarn.scheduler.maximum-allocation-mb": str(self.yarn_memory_mb),
            "capacity-scheduler:yarn.scheduler.capacity.resource-calculator": RESOURCE_CALCULATOR,
            "capacity-scheduler:yarn.scheduler.capacity.maximum-am-resource-percent":
                f"{AM_RESOURCE_PERCENT:g}",
            # Streaming jobs hold their executors; dynamic allocation would release and re-ask.
            "spark:spark.dynamicAllocation.enabled": "false",
        }

    def job_properties(self, executors: int) -> dict[str, str]:
        """Spark properties for one job running `executors` executors."""
        return {
            "spark.executor.instances": str(executors),
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": f"{self.executor_memory_mb}m",
            "spark.executor.memoryOverhead": f"{self.executor_overhead_mb}m",
            "spark.driver.memory": f"{self.driver_memory_mb}m",
            # Client mode: Spark does not request it from YARN; it is the off-heap share kept on the master.
            "spark.driver.memoryOverhead": f"{self.driver_overhead_mb}m",
            "spark.submit.deployMode": DEPLOY_MODE,
            "spark.yarn.am.memory": f"{self.am_memory_mb}m",
            "spark.yarn.am.memoryOverhead": f"{self.am_overhead_mb}m",
            "spark.yarn.am.cores": str(self.am_cores),
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
        }


def spark_sizing(master: MachineShape, worker: MachineShape, workers: int) -> SparkSizing:
    """Executors, drivers and shuffle partitions for `workers` workers of `worker` and one `master`."""
    if workers < MIN_DATAPROC_WORKERS:
        raise SizingError(f"a Dataproc cluster needs at least {MIN_DATAPROC_WORKERS} primary workers")
    # The OS, the NodeManager and the DataNode keep a fifth of the worker (at least 2 GB).
    reserved_mb = max(2 * MIB_PER_GIB, worker.memory_mb // 5)
    yarn_memory_mb = _round_down(worker.memory_mb - reserved_mb, YARN_ALLOCATION_MB)
    executor_cores = 4 if worker.vcpus >= 8 else 2 if worker.vcpus >= 4 else worker.vcpus
    executors_per_worker = worker.vcpus // executor_cores
    # Each worker keeps room for one AM beside its executors; `guaranteed_executors` covers both on one.
    container_mb = _round_down((yarn_memory_mb - am_container_mb()) / executors_per_worker,
                               YARN_ALLOCATION_MB)
    overhead_mb = max(MIN_OVERHEAD_MB, _round_up(container_mb / 11, 64))  # about 10% of the heap
    executor_memory_mb = container_mb - overhead_mb

    executors = guaranteed_executors(yarn_memory_mb, container_mb, workers)
    consumer_executors = executors - PRODUCER_EXECUTORS
    if consumer_executors < 1:
        raise SizingError(f"{workers} x {worker.name} guarantees {executors} executor(s) beside the two "
                          f"application masters; the consumer and the producer need at least 2")

    driver_memory = driver_memory_mb(master)
    # Two tasks per consumer core keeps small micro-batches fast (the default 200 costs about 6x).
    shuffle_partitions = 2 * consumer_executors * executor_cores
    return SparkSizing(
        yarn_memory_mb=yarn_memory_mb,
        yarn_vcores=worker.vcpus,
        executor_cores=executor_cores,
        executor_memory_mb=executor_memory_mb,
        executor_overhead_mb=overhead_mb,
        executors_per_worker=executors_per_worker,
        consumer_executors=consumer_executors,
        producer_executors=PRODUCER_EXECUTORS,
        driver_memory_mb=driver_memory,
        driver_overhead_mb=memory_overhead_mb(driver_memory),
        shuffle_partitions=shuffle_partitions,
    )


def check_application_masters(spark: SparkSizing, workers: int) -> None:
    """Refuse a cluster of `workers` workers whose AM share cannot start both jobs' application masters."""
    needed = JOBS_ON_CLUSTER * am_container_mb()
    limit = am_limit_mb(spark.yarn_memory_mb, workers)
    if limit < needed:
        least = -(-needed // AM_RESOURCE_PERCENT)
        raise SizingError(
            f"{workers} worker(s) of {spark.yarn_memory_mb} MB of YARN memory let the application masters "
            f"hold {limit} MB (yarn.scheduler.capacity.maximum-am-resource-percent {AM_RESOURCE_PERCENT:g}); "
            f"the {JOBS_ON_CLUSTER} jobs' AMs need {needed} MB, so the second job would wait forever: give "
            f"the cluster at least {least:,.0f} MB of YARN memory")


def surviving_consumer_executors(spark: SparkSizing, workers: int, lost: int) -> int:
    """Consumer executors still guaranteed once `lost` of the `workers` workers are gone: what the
    survivors hold in any AM placement, less the producer's (spark.executor.instances stays as asked, so
    YARN places the rest only when the workers come back)."""
    left = guaranteed_executors(spark.yarn_memory_mb, spark.executor_container_mb, workers - lost)
    return max(0, min(spark.consumer_executors, left - spark.producer_executors))


def kafka_heap_mb(memory_mb: int) -> int:
    """Broker JVM heap for a VM or a container of `memory_mb`: a quarter of it, 1-6 GB; the rest is
    page cache, which Kafka lives on."""
    return min(6 * MIB_PER_GIB, max(MIB_PER_GIB, _round_down(memory_mb / 4, YARN_ALLOCATION_MB)))


def influxdb_memory_limit_mb(memory_mb: int) -> int:
    """InfluxDB's GOMEMLIMIT for a VM or a container of `memory_mb`: 60% of it, leaving the rest to
    the page cache and the exporter."""
    return _round_down(memory_mb * 0.6, YARN_ALLOCATION_MB)


# The local stack: one machine's Docker engine. Each container gets a memory limit (MB), so that one
# service cannot starve the others or the machine: about 8 GB in all (limits, not reservations). Kafka's
# heap and InfluxDB's GOMEMLIMIT follow them by the rules above, as on a VM of that memory.
LOCAL_CONTAINER_MB = {
    "kafka": 1536,
    "influxdb": 1024,
    "prometheus": 512,
    "alertmanager": 128,
    "grafana": 512,
    "node-exporter": 128,
    "spark": 4096,
}
# One-shot tool containers of the local stack: a Kafka CLI JVM; bash; the influx CLI (Go) beside bash.
LOCAL_KAFKA_TOOLS_MB = 512
LOCAL_SECRETS_TOOLS_MB = 64
LOCAL_TOKENS_TOOLS_MB = 128
# Local-mode Spark: both jobs' drivers in the Spark container, the executors inside the drivers.
LOCAL_DRIVER_MEMORY_MB = 1024
# One machine's few cores: the default 200 shuffle partitions make small streaming batches ~6x slower
# (docs/jobs.md). Fixed at a query's first start, as its checkpoint keeps the number.
LOCAL_SHUFFLE_PARTITIONS = 4


def local_container_mb(service: str) -> int:
    """The memory limit of one local container; a SizingError names the known services."""
    try:
        return LOCAL_CONTAINER_MB[service]
    except KeyError:
        raise SizingError(f"no local container size for {service!r}; known: "
                          f"{', '.join(LOCAL_CONTAINER_MB)}") from None


# Consumer throughput per executor core: readings/s that one core of the consumer turns into
# InfluxDB points, validated and windowed, as the stream runs. infra.capacity multiplies it by the
# consumer's executor cores, and settings refuse a configured rate above half of that.
# Measured by the steady-state benchmark (CONSUMER_THROUGHPUT_COMMAND) on 2026-12-07, 19:37-19:49 UTC,
# at commit 5fdc2cf, 717 s, on a 2-core AMD EPYC with 23.5 GB (load average 1.3 before: the machine had
# just gone quiet; 3.5 after): the consumer's own command line fed through the test broker at the stacks'
# 30 s trigger into the real influxd, warm, at 2,000, 4,000 and 8,000 readings/s for 60 s each.
# local[1] sustained 4,000/s (batches p99 9.9 s, latency p99 39.2 s) and failed at 8,000/s on the
# latency objective alone (p99 41.3 s >= trigger + 10 s, its batches p99 12.6 s, well within the
# trigger): 4,000 per core by the benchmark's rule (the highest passing step over the master's cores).
# It is a lower bound: the limit lies between 4,000 and 8,000. What binds is the latency objective: a
# reading waits up to a trigger before its batch starts, so a batch must end within about 10 s, and
# each batch had a fixed cost of about 5 s here (6.7 s at 2,000/s, 9.2 s at 4,000, 12.5 s at 8,000).
# local[2] sustained the same 4,000/s and failed at 8,000/s the same way (41.0 s), 2,000 per core by the
# rule: on this 2-core machine the producer, the broker and influxd share both cores with a local[2]
# consumer (and local[1]'s JVM threads and Python worker already use the second one), so its second
# task slot bought nothing; on Dataproc they run on other machines and an executor's cores are its own.
# local[1] is the master whose core count is what it had: its figure is the catalog's. That an
# executor's cores scale the rate linearly is the model's assumption, not measured here (2 cores were
# all there was); the oversize factor (infra/right_size.py) and the half kept for backlogs cover it.
CONSUMER_READINGS_PER_CORE = 4000
CONSUMER_THROUGHPUT_MEASURED_ON = "2026-12-07"
CONSUMER_THROUGHPUT_COMMAND = """\
.venv/bin/python benchmarks/steady_state.py --json /tmp/steady-state.json
# its defaults: --steps 2000,4000,8000 --step-seconds 60 --masters local[1],local[2]
#   --warmup-batches 2 --producer-master local[1]; per master one jobs/consumer.py --master 'local[N]'
#   --source kafka --sink influxdb --trigger 30s --window 5m --slide 1m --watermark 10m
#   --max-offsets-per-trigger 1200000 (the stacks' arguments), kept running through its steps, and per
#   step one jobs/producer.py --sink kafka --rate RATE
"""
