"""The streaming jobs on Dataproc: the release's artifacts in Cloud Storage and the two running jobs.

The release bundle (built once by the stack model from the working tree's `jobs/`) is uploaded
under `releases/<digest>/`, the locked Kafka connector jars under `releases/<digest>/jars/`
(`infra.release.connector_jars`): a job start never resolves from Maven.
A pinned stack (staging, prod) deploys only the release it pins: `pulumi preview` warns about a tree
that differs and `pulumi up` refuses it. The consumer is submitted first and the producer depends on
it; a Dataproc Job resource is created once its job is RUNNING, so `pulumi up` never waits on a
never-ending stream. Replacement deletes first (two consumers must never share a checkpoint) and
destroy cancels running jobs. The InfluxDB token travels as a Secret Manager version name, never as
a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.job_commands import JobFlags, TokenSource, consumer_args, kafka_login, producer_args
from infra.release import bundle, connector_jars

CONSUMER = "consumer"
PRODUCER = "producer"
ENTRY_FILE = {CONSUMER: "consumer.py", PRODUCER: "producer.py"}
# Dataproc job ids: letters, digits, underscores and hyphens, at most 100 characters.
RELEASE_ID_CHARS = 16
SPEC_ID_CHARS = 8
# Label values hold at most 63 characters: a release is labelled with its prefix.
RELEASE_LABEL_CHARS = 12
ARTIFACTS_DIR = Path(tempfile.gettempdir()) / "hydrostream-artifacts"


def bytes_asset(data: bytes, file_name: str) -> pulumi.FileAsset:
    """An asset holding exactly `data`: a file named by its digest (Pulumi has no in-memory bytes asset)."""
    digest = hashlib.sha256(data).hexdigest()
    path = ARTIFACTS_DIR / digest / file_name
    if not path.is_file() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(path)
    return pulumi.FileAsset(str(path))


def release_to_deploy(stack: str, pin: str | None, digest: str) -> str:
    """The release this run deploys: a pin that the tree does not match warns in preview, fails on update."""
    try:
        return bundle.check_release_pin(stack, pin, digest)
    except bundle.ReleaseMismatch as mismatch:
        if pulumi.runtime.is_dry_run():
            pulumi.log.warn(f"{mismatch} `pulumi up` will refuse to deploy it.")
            assert pin is not None
            return pin
        raise pulumi.RunError(str(mismatch)) from None


def job_id(job: str, release: str, spec: object) -> str:
    """`hydro-<job>-<release prefix>-<spec digest>`: a new release or a changed job is a new id.

    Replacement deletes the old job first; a fresh id never collides with what Dataproc remembers of it.
    """
    spec_digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return f"hydro-{job}-{release[:RELEASE_ID_CHARS]}-{spec_digest[:SPEC_ID_CHARS]}"


@dataclass(frozen=True)
class Restarts:
    """Dataproc's restart policy for a job's driver: a job that keeps failing stays failed."""

    max_failures_per_hour: int
    max_failures_total: int


@dataclass(frozen=True)
class StreamingJobsArgs:
    stack: str
    region: str
    labels: Mapping[str, str]
    bundle: bundle.Bundle               # the working tree's release
    release_pin: str | None             # the release a pinned stack deploys (None: the working tree's)
    flags: JobFlags                     # the jobs' command-line values
    restarts: Restarts
    influx_org: str
    influx_bucket: str
    # Spark properties of each job: the derived sizes (the connector comes as jar_file_uris, not packages).
    consumer_properties: Mapping[str, str]
    producer_properties: Mapping[str, str]
    cluster_name: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]     # bucket names, not gs:// URIs
    checkpoint_bucket: pulumi.Input[str]
    bootstrap_servers: pulumi.Input[str]
    influx_url: pulumi.Input[str]
    token_secret_id: pulumi.Input[str]      # projects/P/secrets/S of the InfluxDB token: a name, not a value
    # projects/P/secrets/S of each job's Kafka password, by its Kafka user (the producer's, the consumer's)
    kafka_password_secret_ids: Mapping[str, pulumi.Input[str]]


class StreamingJobs(pulumi.ComponentResource):
    """The release's artifacts and the consumer and producer jobs; exposes their job ids and `release`."""

    def __init__(self, name: str, args: StreamingJobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:jobs:StreamingJobs", name, None, opts)
        release = release_to_deploy(args.stack, args.release_pin, args.bundle.digest)
        self.release = release

        uris: dict[str, pulumi.Output[str]] = {}
        for file_name, data in args.bundle.files.items():
            uploaded = gcp.storage.BucketObject(
                f"{name}-{file_name}",
                bucket=args.artifacts_bucket,
                name=bundle.release_object_name(release, file_name),
                source=bytes_asset(data, file_name),
                content_type="application/zip" if file_name.endswith(".zip") else "text/x-python",
                opts=pulumi.ResourceOptions(parent=self),
            )
            uris[file_name] = pulumi.Output.all(uploaded.bucket, uploaded.output_name).apply(
                lambda parts: f"gs://{parts[0]}/{parts[1]}")

        # The connector and its dependencies beside the code: a job start never reaches Maven Central.
        jar_uris: list[pulumi.Output[str]] = []
        for jar in connector_jars.release_jars():
            uploaded = gcp.storage.BucketObject(
                f"{name}-jar-{jar.artifact}",
                bucket=args.artifacts_bucket,
                name=bundle.release_jar_object_name(release, jar.file_name),
                source=pulumi.FileAsset(str(connector_jars.cached(jar))),
                content_type="application/java-archive",
                opts=pulumi.ResourceOptions(parent=self),
            )
            jar_uris.append(pulumi.Output.all(uploaded.bucket, uploaded.output_name).apply(
                lambda parts: f"gs://{parts[0]}/{parts[1]}"))

        # The jobs' Python packages as zips on their PYTHONPATH: cluster creation never reaches PyPI.
        wheel_uris: list[pulumi.Output[str]] = []
        for wheel in args.bundle.wheels:
            uploaded = gcp.storage.BucketObject(
                f"{name}-python-{wheel.name}",
                bucket=args.artifacts_bucket,
                name=bundle.release_wheel_object_name(release, wheel),
                source=pulumi.FileAsset(str(connector_jars.cached(wheel))),
                content_type="application/zip",
                opts=pulumi.ResourceOptions(parent=self),
            )
            wheel_uris.append(pulumi.Output.all(uploaded.bucket, uploaded.output_name).apply(
                lambda parts: f"gs://{parts[0]}/{parts[1]}"))

        # Every release's checkpoints below the bucket's root: the consumer hands over from the last one.
        handover_root = pulumi.Output.concat("gs://", args.checkpoint_bucket)
        checkpoint_root = pulumi.Output.concat(handover_root, "/", release)
        passwords = args.kafka_password_secret_ids
        consumer_command = pulumi.Output.all(
            args.bootstrap_servers, args.influx_url, args.token_secret_id, checkpoint_root, handover_root,
            passwords[catalog.KAFKA_CONSUMER_USER],
        ).apply(lambda values: consumer_args(
            args.flags,
            bootstrap_servers=values[0],
            influx_url=values[1],
            influx_org=args.influx_org,
            influx_bucket=args.influx_bucket,
            token=TokenSource(secret=f"{values[2]}/versions/latest"),
            checkpoint_root=values[3],
            handover_root=values[4],
            kafka_login=kafka_login(catalog.KAFKA_CONSUMER_USER, secret=f"{values[5]}/versions/latest"),
        ))
        producer_command = pulumi.Output.all(
            args.bootstrap_servers, checkpoint_root, passwords[catalog.KAFKA_PRODUCER_USER],
        ).apply(lambda values: producer_args(
            args.flags, bootstrap_servers=values[0], checkpoint_root=values[1],
            kafka_login=kafka_login(catalog.KAFKA_PRODUCER_USER, secret=f"{values[2]}/versions/latest")))

        consumer = self._job(name, CONSUMER, args, release, uris, jar_uris, wheel_uris, consumer_command,
                             dict(args.consumer_properties), depends_on=[])
        producer = self._job(name, PRODUCER, args, release, uris, jar_uris, wheel_uris, producer_command,
                             dict(args.producer_properties), depends_on=[consumer])

        self.consumer_job_id: pulumi.Output[str] = consumer.reference.apply(lambda ref: ref.job_id)
        self.producer_job_id: pulumi.Output[str] = producer.reference.apply(lambda ref: ref.job_id)
        self.register_outputs({
            "release": self.release,
            "consumer_job_id": self.consumer_job_id,
            "producer_job_id": self.producer_job_id,
        })

    def _job(self, name: str, job: str, args: StreamingJobsArgs, release: str,
             uris: dict[str, pulumi.Output[str]], jar_uris: list[pulumi.Output[str]],
             wheel_uris: list[pulumi.Output[str]], command: pulumi.Output[list[str]],
             properties: dict[str, str], depends_on: list[pulumi.Resource]) -> gcp.dataproc.Job:
        main_uri = uris[ENTRY_FILE[job]]
        python_uris = pulumi.Output.all(uris[bundle.PACKAGE_ZIP], *wheel_uris)
        jars = pulumi.Output.all(*jar_uris)
        reference_id = pulumi.Output.all(args.cluster_name, main_uri, python_uris, command, jars).apply(
            lambda spec: job_id(job, release, {"spec": spec, "properties": properties}))
        return gcp.dataproc.Job(
            f"{name}-{job}",
            region=args.region,
            placement=gcp.dataproc.JobPlacementArgs(cluster_name=args.cluster_name),
            reference=gcp.dataproc.JobReferenceArgs(job_id=reference_id),
            pyspark_config=gcp.dataproc.JobPysparkConfigArgs(
                main_python_file_uri=main_uri,
                python_file_uris=python_uris,
                jar_file_uris=jars,
                args=command,
                properties=properties,
            ),
            # Dataproc restarts a failed driver; a job that keeps failing stays failed for an operator.
            scheduling=gcp.dataproc.JobSchedulingArgs(
                max_failures_per_hour=args.restarts.max_failures_per_hour,
                max_failures_total=args.restarts.max_failures_total,
            ),
            labels={**args.labels, "job": job, "release": release[:RELEASE_LABEL_CHARS]},
            # Destroy and replacement cancel a running job instead of failing on it.
            force_delete=True,
            # The resource is done once the job is RUNNING; waiting for a stream to end would never return.
            wait_for_completion=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, delete_before_replace=True),
        )
