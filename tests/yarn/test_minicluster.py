"""The test YARN is the Hadoop of the pinned Dataproc image, and the cluster's YARN properties reach it."""

from infra import catalog
from tests.yarn.minicluster import HADOOP_VERSION, NodeShape, yarn_properties

# Dataproc's 2.2 image line runs Hadoop 3.3.6 (its release notes' component table).
HADOOP_OF_IMAGE_LINE = {"2.2": "3.3.6"}


def test_the_minicluster_runs_the_hadoop_of_the_pinned_image():
    line = catalog.DATAPROC_IMAGE.version.split("-")[0]
    assert HADOOP_OF_IMAGE_LINE[line] == HADOOP_VERSION


def test_yarn_and_capacity_scheduler_properties_are_applied_and_the_rest_is_not():
    config = yarn_properties(NodeShape(13056, 4), {
        "yarn:yarn.scheduler.maximum-allocation-mb": "13056",
        "capacity-scheduler:yarn.scheduler.capacity.resource-calculator": "C",
        "spark:spark.dynamicAllocation.enabled": "false",
        "dataproc:dataproc.logging.stackdriver.enable": "false",
    })
    assert config["yarn.scheduler.maximum-allocation-mb"] == "13056"
    assert config["yarn.scheduler.capacity.resource-calculator"] == "C"
    assert config["yarn.minicluster.yarn.nodemanager.resource.memory-mb"] == "13056"
    assert config["yarn.nodemanager.resource.cpu-vcores"] == "4"
    assert not any("spark" in key or "stackdriver" in key for key in config)
