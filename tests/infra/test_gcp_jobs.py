"""The streaming jobs under mocks: the release's artifacts, consumer before producer, replacement and
destroy behaviour, restart policy, the release's connector jars, no secret on a command line, the pin."""

import hashlib
import importlib.metadata
import io
import logging
import re
import zipfile
from pathlib import Path

import pulumi
import pytest
import yaml
from hydrostream_jobs import contract

from infra import catalog, roles
from infra.gcp import stack as gcp_stack
from infra.gcp.jobs import StreamingJobs
from infra.gcp.secrets import Secrets
from infra.release import bundle, connector_jars
from infra.tools import mocks

JOB = "gcp:dataproc/job:Job"
OBJECT = "gcp:storage/bucketObject:BucketObject"
PIN = "0" * 64


def declare_jobs(model) -> dict:
    """The jobs alone, with the secrets whose id they read, from the Args infra/gcp/stack.py builds."""
    emails = {role.name: f"fake-{role.name}@fake.iam.gserviceaccount.com" for role in roles.ACCOUNTS}
    secrets = Secrets("secrets", gcp_stack.secrets_args(model, emails, receiver_values={}))
    jobs = StreamingJobs("jobs", gcp_stack.jobs_args(
        model, cluster_name="fake-cluster", artifacts_bucket="fake-artifacts",
        checkpoint_bucket="fake-checkpoints", bootstrap_servers="10.9.0.5:9092",
        influx_url="http://10.9.0.6:8086", secret_ids=secrets.ids))
    return {"release": jobs.release, "consumer_job_id": jobs.consumer_job_id,
            "producer_job_id": jobs.producer_job_id}


@pytest.fixture(scope="module")
def digest() -> str:
    return bundle.build_bundle(bundle.JOBS_DIR).digest


@pytest.fixture(scope="module")
def planned():
    return mocks.run_components("dev", declare_jobs)


def jobs(planned) -> dict[str, mocks.PlannedResource]:
    return {r.inputs["labels"]["job"]: r for r in planned.of_type(JOB)}


def arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_two_jobs_on_the_cluster(planned):
    assert sorted(jobs(planned)) == ["consumer", "producer"]
    for job in planned.of_type(JOB):
        assert job.inputs["placement"] == {"clusterName": "fake-cluster"}
        assert job.inputs["region"] == "europe-west1"


def test_producer_starts_after_the_consumer(planned):
    by_job = jobs(planned)
    assert by_job["consumer"].urn in by_job["producer"].dependencies
    assert by_job["producer"].urn not in by_job["consumer"].dependencies


def test_jobs_never_block_and_are_replaced_delete_first_and_force_deleted(planned):
    for job in planned.of_type(JOB):
        assert job.delete_before_replace, job.name
        assert job.inputs["forceDelete"] is True
        assert job.inputs.get("waitForCompletion", False) is False


def test_restart_policy_from_the_stack_settings(planned):
    settings = planned.settings.jobs
    assert (settings.max_failures_per_hour, settings.max_failures_total) == (5, 20)  # dev: the defaults
    for job in planned.of_type(JOB):
        assert job.inputs["scheduling"] == {"maxFailuresPerHour": 5, "maxFailuresTotal": 20}


# The connector's compile-scope dependencies that Spark's own jars/ folder lacks (spark-sql-kafka's POM).
CONNECTOR_JARS = ("spark-sql-kafka-0-10_{scala}-{spark}.jar",
                  "spark-token-provider-kafka-0-10_{scala}-{spark}.jar",
                  "kafka-clients-3.4.1.jar", "commons-pool2-2.11.1.jar")


def test_connector_is_the_images_and_matches_the_installed_pyspark(planned, digest):
    pyspark = importlib.metadata.version("pyspark")
    assert catalog.DATAPROC_IMAGE.spark == pyspark
    base = f"gs://fake-artifacts/releases/{digest}/jars"
    expected = [f"{base}/{name.format(scala=catalog.DATAPROC_IMAGE.scala, spark=pyspark)}"
                for name in CONNECTOR_JARS]
    for job in planned.of_type(JOB):
        pyspark_config = job.inputs["pysparkConfig"]
        assert pyspark_config["jarFileUris"] == expected
        # Nothing resolved from Maven Central when a job starts.
        assert not any("jars.packages" in key or "jars.repositories" in key
                       for key in pyspark_config["properties"])


def test_the_connector_jars_uploaded_are_the_locked_bytes(planned, digest):
    objects = {r.inputs["name"]: r for r in planned.of_type(OBJECT)}
    jars = {name: r for name, r in objects.items() if name.startswith(f"releases/{digest}/jars/")}
    assert len(jars) == len(CONNECTOR_JARS)
    locked = {line.split()[0]: line.split()[1] for line in
              (Path(connector_jars.__file__).parent / "connector-jars.lock").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    for uploaded in jars.values():
        source = uploaded.inputs["source"]
        assert isinstance(source, pulumi.FileAsset)
        data = Path(source.path).read_bytes()
        assert data[:2] == b"PK"  # a jar is a zip
        assert hashlib.sha256(data).hexdigest() in locked.values()
        assert uploaded.inputs["contentType"] == "application/java-archive"


def test_executor_counts_fill_the_cluster(planned):
    spark = planned.model.gcp.spark
    by_job = jobs(planned)
    consumer = by_job["consumer"].inputs["pysparkConfig"]["properties"]
    producer = by_job["producer"].inputs["pysparkConfig"]["properties"]
    # dev: 3 e2-highmem-2 workers x 1 executor, less one that both AMs on one worker crowd out, one for
    # the producer.
    assert consumer["spark.executor.instances"] == "1" and producer["spark.executor.instances"] == "1"
    for properties in (consumer, producer):
        assert properties["spark.executor.memory"] == f"{spark.executor_memory_mb}m"
        assert properties["spark.executor.memoryOverhead"] == f"{spark.executor_overhead_mb}m"
        assert properties["spark.sql.shuffle.partitions"] == "4"  # 2 x 1 consumer executor x 2 cores


def test_job_ids_carry_the_release(planned, digest):
    assert planned.outputs["release"] == digest
    ids = {planned.outputs["consumer_job_id"], planned.outputs["producer_job_id"]}
    assert len(ids) == 2
    for job in planned.of_type(JOB):
        job_id = job.inputs["reference"]["jobId"]
        assert job_id in ids
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", job_id)
        assert digest[:16] in job_id
        labels = job.inputs["labels"]
        assert labels == {"app": "hydrostream", "env": "dev", "job": labels["job"], "release": digest[:12]}


def test_no_secret_on_any_command_line(planned):
    values = [f"mock-{r.name}-value" for r in planned.resources if r.type.startswith("random:")]
    assert values
    for job in planned.of_type(JOB):
        text = yaml.safe_dump(job.inputs)
        assert not [value for value in values if value in text], job.name
        assert not job.secret_paths
    args = jobs(planned)["consumer"].inputs["pysparkConfig"]["args"]
    # The write-only token's secret: the operator token never leaves the InfluxDB VM (DESIGN).
    assert arg_after(args, "--influx-token-secret") == (
        "projects/hydrostream-dev/secrets/hydrostream-influxdb-write-token/versions/latest")
    assert "--influx-token" not in args and "--influx-token-file" not in args


def test_command_lines_point_at_the_endpoints_and_release_checkpoints(planned, digest):
    by_job = jobs(planned)
    consumer = by_job["consumer"].inputs["pysparkConfig"]["args"]
    producer = by_job["producer"].inputs["pysparkConfig"]["args"]
    for args in (consumer, producer):
        assert arg_after(args, "--bootstrap-servers") == "10.9.0.5:9092"
        assert arg_after(args, "--topic") == contract.READINGS_TOPIC
    assert arg_after(consumer, "--influx-url") == "http://10.9.0.6:8086"
    assert arg_after(consumer, "--checkpoint-location") == f"gs://fake-checkpoints/{digest}/consumer"
    assert arg_after(producer, "--checkpoint-location") == f"gs://fake-checkpoints/{digest}/producer"
    assert arg_after(consumer, "--handover-from") == "gs://fake-checkpoints"  # every release's folder
    assert arg_after(consumer, "--metrics-port") == str(contract.CONSUMER_METRICS_PORT)
    assert arg_after(producer, "--metrics-port") == str(contract.PRODUCER_METRICS_PORT)


def test_artifacts_are_uploaded_under_the_release(planned, digest):
    built = bundle.build_bundle(bundle.JOBS_DIR)
    objects = {r.inputs["name"]: r for r in planned.of_type(OBJECT)}
    code = sorted(name for name in objects if not name.startswith((f"releases/{digest}/jars/",
                                                                    f"releases/{digest}/python/")))
    assert code == sorted(f"releases/{digest}/{name}"
                          for name in ("hydrostream_jobs.zip", "consumer.py", "producer.py"))
    for name, data in (("hydrostream_jobs.zip", built.package_zip), ("consumer.py", built.consumer),
                       ("producer.py", built.producer)):
        uploaded = objects[f"releases/{digest}/{name}"]
        assert uploaded.inputs["bucket"] == "fake-artifacts"
        source = uploaded.inputs["source"]
        assert isinstance(source, pulumi.FileAsset)
        assert Path(source.path).read_bytes() == data


def test_jobs_run_the_release_files(planned, digest):
    base = f"gs://fake-artifacts/releases/{digest}"
    for job, entry in (("consumer", "consumer.py"), ("producer", "producer.py")):
        pyspark = jobs(planned)[job].inputs["pysparkConfig"]
        assert pyspark["mainPythonFileUri"] == f"{base}/{entry}"
        # The code, then prometheus-client (the one package the jobs import beyond pyspark) as a zip:
        # Dataproc puts both on the drivers' and executors' PYTHONPATH; the cluster installs nothing.
        assert pyspark["pythonFileUris"] == [f"{base}/hydrostream_jobs.zip",
                                             f"{base}/python/prometheus_client-0.26.0.zip"]


def test_the_wheel_uploaded_is_the_locked_pure_python_wheel(planned, digest):
    (uploaded,) = [r for r in planned.of_type(OBJECT)
                   if r.inputs["name"].startswith(f"releases/{digest}/python/")]
    data = Path(uploaded.inputs["source"].path).read_bytes()
    lock = (Path(connector_jars.__file__).parent / "python-wheels.lock").read_text()
    assert f"prometheus-client=={importlib.metadata.version('prometheus-client')} " in lock
    assert f" {hashlib.sha256(data).hexdigest()}\n" in lock
    assert uploaded.inputs["contentType"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    # A pure-Python package at the archive's root: zipimport finds it, and there is nothing to compile.
    assert "prometheus_client/__init__.py" in names
    assert not [name for name in names if name.endswith((".so", ".pyd"))]


def test_a_pin_that_differs_warns_in_preview_and_deploys_the_pin(digest, caplog):
    assert digest != PIN
    with caplog.at_level(logging.WARNING):
        planned = mocks.run_components("staging", declare_jobs, preview=True)
    assert planned.outputs["release"] == PIN
    assert any(f"pins jobs release {PIN}" in record.getMessage() for record in caplog.records)
    names = {r.inputs["name"] for r in planned.of_type(OBJECT)}
    assert all(name.startswith(f"releases/{PIN}/") for name in names)


def test_a_pin_that_differs_refuses_the_update(digest):
    with pytest.raises(pulumi.RunError) as refused:
        mocks.run_components("staging", declare_jobs, preview=False)
    message = str(refused.value)
    assert f"stack 'staging' pins jobs release {PIN}" in message
    assert f"bundle is release {digest}" in message
    assert "make promote FROM=dev TO=staging" in message


def test_a_matching_pin_deploys_on_update(digest):
    config = mocks.stack_config("staging")
    config["hydrostream:jobs"] = {**config["hydrostream:jobs"], "release": digest}
    planned = mocks.run_components("staging", declare_jobs, config, preview=False)
    assert planned.outputs["release"] == digest
    assert len(planned.of_type(JOB)) == 2
