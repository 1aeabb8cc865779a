"""The local Spark container: consumer and producer in local-mode Spark, with Dataproc's command lines.

The job arguments come from `infra.job_commands` (the same builder the Dataproc jobs use); the code
is the jobs release bundle (`infra.release.bundle`), uploaded as the zip, entry files and Python wheels
Dataproc gets, and the Kafka connector is the release's locked jars (`infra.release.connector_jars`), so
no start downloads anything. What differs is only how Spark is started: `spark-submit --master local[*]`
by a small entry script.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from hydrostream_jobs import contract

from infra import catalog, roles
from infra.job_commands import JobFlags, TokenSource, consumer_args, kafka_login, producer_args
from infra.local.secrets import secret_path
from infra.local.services import ServiceContainer, ServiceContainerArgs, Upload
from infra.release import connector_jars
from infra.release.bundle import PACKAGE_ZIP, Bundle
from infra.render.templating import TEMPLATES
from infra.services.spark import LocalSparkSpec

ENTRY_SCRIPT = TEMPLATES / "local" / "spark-jobs.sh"

MASTER = "local[*]"
# The apache/spark image's unprivileged user; the entry script starts as root only to prepare folders.
SPARK_USER = "spark"
SPARK_UID = "185"
ENTRY_PATH = "/opt/hydrostream/bin/spark-jobs.sh"
JOBS_PATH = "/opt/hydrostream/jobs"
JARS_PATH = "/opt/hydrostream/jars"
PYTHON_PATH = "/opt/hydrostream/python"
# What the jobs read from the container's secrets volume: what Dataproc reads on GCP (the write token and
# each job's Kafka password).
SECRETS = roles.of(catalog.SPARK.role).reads
TOKEN_PATH = secret_path(catalog.INFLUXDB_WRITE_TOKEN)
# Each job logs in to Kafka as its own user, its password a file of the Spark container's secrets volume.
KAFKA_LOGINS = {user: kafka_login(user, file=secret_path(catalog.kafka_password(user)))
                for user in (catalog.KAFKA_PRODUCER_USER, catalog.KAFKA_CONSUMER_USER)}
CHECKPOINT_ROOT = catalog.SPARK.volumes[0].container_path


def submit_options(spark: LocalSparkSpec, bundle: Bundle) -> list[str]:
    """spark-submit options shared by both jobs (before the entry file)."""
    image = spark.service.image
    image_spark = image.rpartition(":")[2].split("-")[0]
    if image_spark != catalog.DATAPROC_IMAGE.spark:
        raise ValueError(f"{image} runs Spark {image_spark}, but the Kafka connector "
                         f"{catalog.DATAPROC_IMAGE.kafka_connector} is for Spark "
                         f"{catalog.DATAPROC_IMAGE.spark}")
    return [
        "--master", MASTER,
        "--driver-memory", f"{spark.driver_memory_mb}m",
        # The release's locked connector jars, uploaded into the container: nothing from Maven Central.
        "--jars", ",".join(f"{JARS_PATH}/{jar.file_name}" for jar in connector_jars.release_jars()),
        "--conf", f"spark.sql.shuffle.partitions={spark.shuffle_partitions}",
        # The code and the release's wheels (the Spark image lacks prometheus-client): nothing from PyPI.
        "--py-files", ",".join([f"{JOBS_PATH}/{PACKAGE_ZIP}",
                                *(f"{PYTHON_PATH}/{wheel.shipped_name}" for wheel in bundle.wheels)]),
    ]


@dataclass(frozen=True)
class SparkJobsArgs:
    spark: LocalSparkSpec                         # the container's memory, the drivers' heap, partitions
    flags: JobFlags                               # the jobs' command-line values
    bundle: Bundle
    bootstrap_servers: str                        # Kafka on the stack's network
    influx_url: str
    influx_org: str
    influx_bucket: str
    secrets_volume: pulumi.Input[str]             # holds the token file (`infra.local.secrets`)
    prefix: str
    network_name: pulumi.Input[str]
    bind_address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Input[pulumi.Resource], ...] = ()


class SparkJobs(pulumi.ComponentResource):
    """The catalog's Spark service running both jobs; replaced when the jobs release changes."""

    def __init__(self, name: str, args: SparkJobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:SparkJobs", name, None, opts)
        # A folder per release, as on GCS: a new release hands over from the last one's checkpoint.
        release_root = f"{CHECKPOINT_ROOT}/{args.bundle.digest}"
        self.consumer_args = consumer_args(
            args.flags, bootstrap_servers=args.bootstrap_servers, influx_url=args.influx_url,
            influx_org=args.influx_org, influx_bucket=args.influx_bucket, token=TokenSource(file=TOKEN_PATH),
            checkpoint_root=release_root, handover_root=CHECKPOINT_ROOT,
            kafka_login=KAFKA_LOGINS[catalog.KAFKA_CONSUMER_USER])
        self.producer_args = producer_args(
            args.flags, bootstrap_servers=args.bootstrap_servers, checkpoint_root=release_root,
            kafka_login=KAFKA_LOGINS[catalog.KAFKA_PRODUCER_USER])
        shared = submit_options(args.spark, args.bundle)
        command = (ENTRY_PATH,
                   "--", *shared, f"{JOBS_PATH}/consumer.py", *self.consumer_args,
                   "--", *shared, f"{JOBS_PATH}/producer.py", *self.producer_args)
        uploads = (
            Upload(ENTRY_PATH, content=ENTRY_SCRIPT.read_text(), permissions="0755"),
            Upload(f"{JOBS_PATH}/{PACKAGE_ZIP}",
                   content_base64=base64.b64encode(args.bundle.package_zip).decode()),
            Upload(f"{JOBS_PATH}/consumer.py", content=args.bundle.consumer.decode()),
            Upload(f"{JOBS_PATH}/producer.py", content=args.bundle.producer.decode()),
            *(Upload(f"{JARS_PATH}/{jar.file_name}", source=str(connector_jars.cached(jar)),
                     source_sha256=jar.sha256)
              for jar in connector_jars.release_jars()),
            *(Upload(f"{PYTHON_PATH}/{wheel.shipped_name}", source=str(connector_jars.cached(wheel)),
                     source_sha256=wheel.sha256)
              for wheel in args.bundle.wheels),
        )
        env = {
            "HYDRO_SPARK_USER": SPARK_USER,
            "HYDRO_OWNED_DIRS": CHECKPOINT_ROOT,
            "HYDRO_CONSUMER_READY_URL": f"http://localhost:{contract.CONSUMER_METRICS_PORT}/metrics",
        }
        self.service = ServiceContainer(name, ServiceContainerArgs(
            service=args.spark.service,
            prefix=args.prefix,
            network_name=args.network_name,
            bind_address=args.bind_address,
            memory_mb=args.spark.memory_mb,
            env=env,
            command=command,
            # Root only until the entry script has prepared the volume, then `gosu spark`.
            user="0",
            # PID 1 is then an init that forwards `docker stop` to the script and reaps orphaned
            # Python workers, rather than the script itself.
            init=True,
            uploads=uploads,
            secrets_volume=args.secrets_volume,
            # Not gating `pulumi up`: the jobs start minutes after the container.
            wait=False,
            labels={**args.labels, "hydrostream.release": args.bundle.digest},
            depends_on=args.depends_on,
        ), opts=pulumi.ResourceOptions(parent=self))
        self.release = args.bundle.digest
        self.register_outputs({"release": self.release})
