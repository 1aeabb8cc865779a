"""The service catalog and the Dataproc image table agree with the pins the tests run on."""

import ast
import base64
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from infra import catalog
from infra.paths import PROJECT_DIR


def pinned(package: str) -> str:
    deps = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d.split("==")[1] for d in deps if d.split("==")[0] == package)


def test_dataproc_image_spark_is_the_pyspark_the_tests_use():
    assert catalog.DATAPROC_IMAGE.spark == pinned("pyspark")
    assert catalog.DATAPROC_IMAGE.kafka_connector == "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"


def test_every_image_is_pinned_to_a_version_tag():
    for service in catalog.SERVICES.values():
        name, _, tag = service.image.rpartition(":")
        assert name and tag and tag != "latest", service.image


def test_the_images_lock_pins_catalog_images_by_digest_and_names_a_bad_line(tmp_path):
    images = {service.image for service in catalog.SERVICES.values()}
    locked = catalog.locked_image_digests()
    # Every line is an image the catalog runs (no stale line), and those pull by digest.
    assert set(locked) <= images and "apache/kafka:3.9.1" in locked
    assert catalog.KAFKA.reference == ("apache/kafka:3.9.1@sha256:"
                                       "4ceccc577f03f51f6af8dbfda55194d0d892f4fa7913ffbded567ce3895622ed")
    assert catalog.INFLUXDB.reference == "influxdb:2.7.12"  # not recorded yet: by tag
    for lines in (["apache/kafka:3.9.1 sha256:abc"],                                  # not 64 hex
                  ["apache/kafka:3.9.1 sha256:" + "a" * 64, "apache/kafka:3.9.1 sha256:" + "b" * 64]):
        lock = tmp_path / "images.lock"
        lock.write_text("# comment\n" + "\n".join(lines) + "\n")
        with pytest.raises(ValueError, match=rf"images.lock:{len(lines) + 1}: expected one"):
            catalog.locked_image_digests(lock)


def test_ports_are_unique_per_role_and_lookup_names_the_service():
    for role in catalog.ROLES:
        numbers = [p.number for s in catalog.services_for_role(role) for p in s.ports]
        assert len(numbers) == len(set(numbers)), role
    assert catalog.KAFKA.port("kafka") == 9092
    try:
        catalog.KAFKA.port("nope")
    except KeyError as error:
        assert "kafka" in str(error)
    else:
        raise AssertionError("unknown port name must raise")


def test_secrets_reach_containers_only_as_files():
    for service in catalog.SERVICES.values():
        for value in service.env.values():
            assert "password" not in value.lower() and "token" not in value.lower()
        for secret in service.secret_files:
            assert secret.secret in catalog.SECRETS
            assert secret.container_path.startswith(catalog.SECRETS_DIR)


def test_the_spark_image_runs_the_dataproc_spark_and_scala_on_java17():
    image = catalog.DATAPROC_IMAGE
    name, _, tag = catalog.SPARK.image.rpartition(":")
    # The Kafka connector (`_<scala>:<spark>`) must match the image's Spark and Scala.
    assert (name, tag) == ("apache/spark", f"{image.spark}-scala{image.scala}-java17-python3-ubuntu")


def test_the_jobs_parse_with_the_python_of_the_spark_image():
    version = tuple(int(part) for part in catalog.SPARK_IMAGE_PYTHON.split("."))
    assert version >= (3, 10), "prometheus-client and the jobs need Python 3.10 or newer"
    sources = sorted((PROJECT_DIR / "jobs").rglob("*.py"))
    assert sources
    for path in sources:
        ast.parse(path.read_text(), str(path), feature_version=version)


def test_the_jobs_use_no_library_feature_newer_than_the_spark_images_python():
    # The grammar check above misses library members such as datetime.UTC (3.11); vermin knows them.
    result = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), f"-t={catalog.SPARK_IMAGE_PYTHON}-", "--violations",
         "--no-tips", "--eval-annotations", str(PROJECT_DIR / "jobs")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Minimum required versions" in result.stdout


def test_only_node_exporter_reaches_into_the_host_where_its_rootfs_flag_looks():
    reaching = {s.name for s in catalog.SERVICES.values() if s.host_mounts or s.host_pid}
    assert reaching == {catalog.NODE_EXPORTER.name}
    rootfs = [arg.split("=", 1)[1] for arg in catalog.NODE_EXPORTER.command
              if arg.startswith("--path.rootfs=")]
    assert catalog.NODE_EXPORTER.host_mounts == (catalog.HostMount("/", rootfs[0]),)
    assert catalog.NODE_EXPORTER.host_pid


def test_the_kafka_cluster_id_is_a_16_byte_uuid_in_kafkas_form():
    # Kafka's Uuid.fromString: base64url without padding of exactly 16 bytes; randomUuid never
    # starts with "-" (the storage tool would read it as an option) and avoids the reserved 0 and 1.
    cluster_id = catalog.KAFKA.env["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), cluster_id
    raw = base64.urlsafe_b64decode(cluster_id + "==")
    assert len(raw) == 16
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == cluster_id
    assert not cluster_id.startswith("-")
    assert int.from_bytes(raw, "big") not in (0, 1)
