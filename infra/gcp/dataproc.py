"""The Dataproc cluster that runs the streaming jobs: pinned image, catalog shapes, derived Spark sizes.

Private (internal IPs only, its own subnet and service account), Shielded VM, component gateway on.
No autoscaling policy: Dataproc autoscaling does not support Spark Structured Streaming (it removes
nodes whose executors hold streaming state and shuffle data). The cluster is sized once, from the
sizing catalog, so that every executor fits YARN's share of a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import catalog, sizing
from infra.gcp.options import child_options
from infra.gcp.service_vm import CLOUD_PLATFORM_SCOPE

BOOT_DISK_TYPE = "pd-balanced"


def cluster_name(stack: str) -> str:
    """The cluster's name; its master node is `<name>-m`."""
    return f"hydrostream-{stack}"


def cluster_properties(spark: sizing.SparkSizing) -> dict[str, str]:
    """Cluster properties: the derived YARN/Spark sizes.

    No `spark.jars.packages` and no `dataproc:pip.packages`: the Kafka connector and the jobs' Python
    wheels ship with each release (`jar_file_uris`, `python_file_uris`), so creating the cluster reaches
    neither Maven Central nor PyPI.
    """
    return spark.cluster_properties()


@dataclass(frozen=True)
class DataprocClusterArgs:
    cluster_name: str
    project: str
    region: str
    zone: str
    labels: Mapping[str, str]
    master: sizing.MachineShape
    worker: sizing.MachineShape
    workers: int
    boot_disk_gb: int
    idle_delete_minutes: int | None     # dev only; None: the cluster stays
    properties: Mapping[str, str]       # `cluster_properties(...)`: YARN/Spark sizes
    subnet: pulumi.Input[str]
    service_account_email: pulumi.Input[str]
    staging_bucket: pulumi.Input[str]       # bucket names, not gs:// URIs
    temp_bucket: pulumi.Input[str]


class DataprocCluster(pulumi.ComponentResource):
    """A standard Dataproc cluster (one master, >= 2 workers); exposes `cluster_name`, `master_hostname`."""

    def __init__(self, name: str, args: DataprocClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:dataproc:DataprocCluster", name, None, opts)
        lifecycle = None
        if args.idle_delete_minutes is not None:
            # Dev only. A running streaming job keeps the cluster non-idle, so this deletes a cluster
            # only after its jobs were cancelled or failed for good, never one under load.
            lifecycle = gcp.dataproc.ClusterClusterConfigLifecycleConfigArgs(
                idle_delete_ttl=f"{args.idle_delete_minutes * 60}s")

        cluster = gcp.dataproc.Cluster(
            name,
            name=args.cluster_name,
            region=args.region,
            labels=dict(args.labels),
            cluster_config=gcp.dataproc.ClusterClusterConfigArgs(
                staging_bucket=args.staging_bucket,
                temp_bucket=args.temp_bucket,
                gce_cluster_config=gcp.dataproc.ClusterClusterConfigGceClusterConfigArgs(
                    zone=args.zone,
                    subnetwork=args.subnet,
                    internal_ip_only=True,
                    service_account=args.service_account_email,
                    service_account_scopes=[CLOUD_PLATFORM_SCOPE],
                    metadata={"enable-oslogin": "TRUE"},
                    shielded_instance_config=(
                        gcp.dataproc.ClusterClusterConfigGceClusterConfigShieldedInstanceConfigArgs(
                            enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True)),
                ),
                master_config=gcp.dataproc.ClusterClusterConfigMasterConfigArgs(
                    num_instances=1,
                    machine_type=args.master.name,
                    disk_config=gcp.dataproc.ClusterClusterConfigMasterConfigDiskConfigArgs(
                        boot_disk_size_gb=args.boot_disk_gb, boot_disk_type=BOOT_DISK_TYPE),
                ),
                worker_config=gcp.dataproc.ClusterClusterConfigWorkerConfigArgs(
                    num_instances=args.workers,
                    machine_type=args.worker.name,
                    disk_config=gcp.dataproc.ClusterClusterConfigWorkerConfigDiskConfigArgs(
                        boot_disk_size_gb=args.boot_disk_gb, boot_disk_type=BOOT_DISK_TYPE),
                ),
                software_config=gcp.dataproc.ClusterClusterConfigSoftwareConfigArgs(
                    image_version=catalog.DATAPROC_IMAGE.version,
                    # `properties` is computed (what the daemons got); the configurable field is this one.
                    override_properties=dict(args.properties),
                ),
                endpoint_config=gcp.dataproc.ClusterClusterConfigEndpointConfigArgs(
                    enable_http_port_access=True),
                lifecycle_config=lifecycle,
                # No autoscaling_config: Dataproc autoscaling does not support Structured Streaming.
            ),
            # The name is fixed: a replaced cluster goes first (its jobs with it), then the new one
            # starts and the jobs resume from their checkpoints in Cloud Storage.
            # Waits for what the component waits for (Cloud NAT: the init's pip install needs it).
            opts=child_options(self, opts, delete_before_replace=True),
        )

        self.cluster_name: pulumi.Output[str] = cluster.name
        # Jobs run their drivers on the master (client mode): Prometheus scrapes them there.
        self.master_hostname: pulumi.Output[str] = cluster.name.apply(
            lambda cluster: f"{cluster}-m.{args.zone}.c.{args.project}.internal")
        self.register_outputs({"cluster_name": self.cluster_name, "master_hostname": self.master_hostname})
