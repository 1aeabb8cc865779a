"""The Dataproc cluster under mocks, per stack: pinned image, catalog shapes, Spark sizes that fit the
workers, the jobs' Python packages, no Maven resolution, private nodes, no autoscaling, idle delete in dev."""

import importlib.metadata

import pytest

from infra import catalog, sizing
from infra.gcp import stack as gcp_stack
from infra.gcp.dataproc import DataprocCluster
from infra.tools import mocks
from tests.infra.conftest import GCP_STACKS, stack_file

CLUSTER = "gcp:dataproc/cluster:Cluster"
SUBNET = "projects/fake/regions/europe-west1/subnetworks/fake-subnet"
ACCOUNT = "fake-dataproc@fake.iam.gserviceaccount.com"


def declare_cluster(model) -> dict:
    """The cluster alone, from the Args infra/gcp/stack.py builds, with stand-ins for the network's and
    the other components' outputs."""
    cluster = DataprocCluster("dataproc", gcp_stack.dataproc_args(
        model, subnet=SUBNET, service_account_email=ACCOUNT, staging_bucket="fake-staging",
        temp_bucket="fake-temp"))
    return {"cluster_name": cluster.cluster_name, "master_hostname": cluster.master_hostname}


# Worked by hand from the derived shapes (MB; YARN rounds to 256 MB; a worker keeps max(2 GB, a fifth)):
#   dev:  e2-highmem-2 workers, 16384 MB, 2 vCPUs: 16384 - 3276 = 13108 -> 13056 for YARN.
#   prod: e2-standard-2 workers, 8192 MB, 2 vCPUs: 8192 - 2048 = 6144 for YARN.
YARN_MEMORY_MB = {"dev": 13056, "prod": 6144}


@pytest.fixture(scope="module", params=GCP_STACKS)
def planned(request):
    return mocks.run_components(request.param, declare_cluster)


@pytest.fixture
def config(planned) -> dict:
    (cluster,) = planned.of_type(CLUSTER)
    return cluster.inputs["clusterConfig"]


def dataproc_section(stack: str) -> dict:
    return stack_file(stack).get("hydrostream:dataproc") or {}


def test_one_cluster_in_the_stack_region_and_zone(planned, config):
    (cluster,) = planned.of_type(CLUSTER)
    assert cluster.inputs["region"] == stack_file(planned.stack)["gcp:region"]
    assert config["gceClusterConfig"]["zone"] == stack_file(planned.stack)["gcp:zone"]
    assert cluster.inputs["labels"] == {"app": "hydrostream", "env": planned.stack}


def test_shapes_and_worker_count_come_from_the_stack_file_or_the_derivation(planned, config):
    section = dataproc_section(planned.stack)
    choice = planned.model.gcp.right_size.choice
    assert config["masterConfig"]["machineType"] == section.get("master", choice.master.name)
    assert config["masterConfig"]["numInstances"] == 1
    assert config["workerConfig"]["machineType"] == section.get("worker", choice.worker.name)
    assert config["workerConfig"]["numInstances"] == section.get("workers", choice.workers) >= 2
    for node in ("masterConfig", "workerConfig"):
        assert config[node]["diskConfig"]["bootDiskSizeGb"] == section.get("boot_disk_gb", 100)
    # Never the seeds' shared-core shapes.
    for node in ("masterConfig", "workerConfig"):
        assert not sizing.SHAPES[config[node]["machineType"]].shared_core


def test_image_is_the_catalogs_and_runs_the_tested_spark(config):
    assert config["softwareConfig"]["imageVersion"] == catalog.DATAPROC_IMAGE.version
    assert catalog.DATAPROC_IMAGE.spark == importlib.metadata.version("pyspark")


def test_properties_go_to_the_configurable_field(config):
    # The provider computes `softwareConfig.properties` and rejects a value there
    # ("Value for unconfigurable attribute"); `overrideProperties` is what it accepts.
    assert "properties" not in config["softwareConfig"]
    assert config["softwareConfig"]["overrideProperties"]


def test_properties_carry_the_derived_sizes(planned, config):
    properties = config["softwareConfig"]["overrideProperties"]
    spark = planned.model.gcp.spark
    assert properties["yarn:yarn.nodemanager.resource.memory-mb"] == str(spark.yarn_memory_mb)
    assert properties["yarn:yarn.nodemanager.resource.cpu-vcores"] == str(spark.yarn_vcores)
    assert properties["yarn:yarn.scheduler.minimum-allocation-mb"] == "256"
    assert properties["spark:spark.dynamicAllocation.enabled"] == "false"
    if planned.stack in YARN_MEMORY_MB:
        assert properties["yarn:yarn.nodemanager.resource.memory-mb"] == str(YARN_MEMORY_MB[planned.stack])


def test_executors_fit_the_workers_and_drivers_fit_the_master(planned, config):
    worker = sizing.SHAPES[config["workerConfig"]["machineType"]]
    master = sizing.SHAPES[config["masterConfig"]["machineType"]]
    workers = config["workerConfig"]["numInstances"]
    yarn_mb = int(config["softwareConfig"]["overrideProperties"]["yarn:yarn.nodemanager.resource.memory-mb"])
    spark = planned.model.gcp.spark
    # YARN leaves the OS and daemons at least 2 GB of each worker.
    assert yarn_mb <= worker.memory_mb - 2048
    # Each executor container (heap + overhead) fits its share of YARN's memory, and the cores add up.
    per_worker = worker.vcpus // spark.executor_cores
    assert per_worker >= 1
    assert spark.executor_memory_mb + spark.executor_overhead_mb <= yarn_mb // per_worker
    assert spark.executor_overhead_mb >= max(384, spark.executor_memory_mb // 10)
    # Both jobs' executors plus two 1024 MB application masters fit the cluster.
    container = spark.executor_memory_mb + spark.executor_overhead_mb
    assert (spark.consumer_executors + spark.producer_executors) * container + 2 * 1024 <= workers * yarn_mb
    # The master keeps its daemons' 7424 MB beside two drivers (heap, overhead, 512 MB Python each).
    assert 2 * (spark.driver_memory_mb + spark.driver_overhead_mb + 512) + 7424 <= master.memory_mb


def test_creating_the_cluster_installs_nothing_from_pypi(config):
    # The jobs' Python packages ship with each release (python_file_uris: tests/infra/test_gcp_jobs.py);
    # an init that installs from PyPI would fail the cluster whenever PyPI (or the egress to it) fails.
    properties = config["softwareConfig"]["overrideProperties"]
    assert not [key for key in properties if key.startswith(("dataproc:pip.", "dataproc:conda."))]
    assert "initializationActions" not in config


def test_no_job_resolves_packages_from_maven_central(config):
    # The connector ships with the release (jar_file_uris); a cluster-wide spark.jars.packages would make
    # every driver start resolve it from Maven Central again, through NAT.
    properties = config["softwareConfig"]["overrideProperties"]
    assert not any("jars.packages" in key or "jars.repositories" in key for key in properties)


def test_nodes_are_private_shielded_and_run_as_our_account(config):
    gce = config["gceClusterConfig"]
    assert gce["internalIpOnly"] is True
    assert gce["subnetwork"] == SUBNET
    assert gce["serviceAccount"] == ACCOUNT
    assert gce["serviceAccountScopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert "tags" not in gce  # the firewall rules select the nodes by their account
    assert gce["shieldedInstanceConfig"] == {
        "enableSecureBoot": True, "enableVtpm": True, "enableIntegrityMonitoring": True}
    assert config["stagingBucket"] == "fake-staging" and config["tempBucket"] == "fake-temp"


def test_component_gateway_on_and_no_autoscaling(config):
    assert config["endpointConfig"] == {"enableHttpPortAccess": True}
    assert "autoscalingConfig" not in config
    assert "preemptibleWorkerConfig" not in config


def test_idle_delete_only_in_dev(planned, config):
    minutes = dataproc_section(planned.stack).get("idle_delete_minutes")
    if planned.stack == "dev":
        assert minutes == 120
        assert config["lifecycleConfig"] == {"idleDeleteTtl": "7200s"}
    else:
        assert minutes is None
        assert "lifecycleConfig" not in config


def test_cluster_name_and_master_hostname(planned):
    project, zone = stack_file(planned.stack)["gcp:project"], stack_file(planned.stack)["gcp:zone"]
    assert planned.outputs["cluster_name"] == f"hydrostream-{planned.stack}"
    assert planned.outputs["master_hostname"] == f"hydrostream-{planned.stack}-m.{zone}.c.{project}.internal"
    (cluster,) = planned.of_type(CLUSTER)
    # A fixed name: the old cluster must go before its replacement is created.
    assert cluster.delete_before_replace


def test_prod_cluster_is_not_smaller_than_staging_or_dev(plans):
    # What the load needs of a cluster (its consumer's capacity, with one worker lost too, and its
    # vCPUs), not its memory: derived, dev's and staging's 2-vCPU workers are highmem so that an executor
    # fits beside an AM, prod's more numerous ones standard.
    def capacity(stack: str) -> tuple[int, int, int]:
        verdict = plans[stack].model.gcp.right_size
        cluster = verdict.configured
        return cluster.capacity, cluster.one_lost, cluster.workers * cluster.worker.vcpus
    for prod, staging, dev in zip(capacity("prod"), capacity("staging"), capacity("dev"), strict=True):
        assert prod >= staging >= dev
