"""The connector jars a release ships: the lock ties them to the Dataproc image row, bytes must match it."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from infra import catalog
from infra.release import connector_jars
from infra.release.connector_jars import Jar, JarError

ROOT = Path(__file__).resolve().parents[2]


def lock_with(tmp_path: Path, *lines: str) -> Path:
    lock = tmp_path / "connector-jars.lock"
    lock.write_text("# a comment\n\n" + "\n".join(lines) + "\n")
    return lock


def test_the_lock_holds_the_image_rows_connector_and_its_token_provider():
    jars = connector_jars.release_jars()
    coordinates = [jar.coordinate for jar in jars]
    assert coordinates[0] == "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"
    assert coordinates[0] == catalog.DATAPROC_IMAGE.kafka_connector
    assert "org.apache.spark:spark-token-provider-kafka-0-10_2.12:3.5.1" in coordinates
    # The connector POM's own pins of its non-Spark compile dependencies.
    assert "org.apache.kafka:kafka-clients:3.4.1" in coordinates
    assert "org.apache.commons:commons-pool2:2.11.1" in coordinates
    assert all(len(jar.sha256) == 64 for jar in jars)


def test_a_lock_for_another_spark_than_the_image_is_refused_naming_both():
    other_image = replace(catalog.DATAPROC_IMAGE, spark="3.5.3")
    with pytest.raises(JarError, match=r"Spark 3\.5\.3.*spark-sql-kafka-0-10_2\.12:3\.5\.3"):
        connector_jars.release_jars(image=other_image)


def test_a_malformed_lock_line_is_named_with_its_number(tmp_path):
    lock = lock_with(tmp_path, "org.apache.kafka:kafka-clients:3.4.1 not-a-digest")
    with pytest.raises(JarError, match=r"connector-jars.lock:3: expected `group:artifact:version sha256`"):
        connector_jars.locked_jars(lock)


def test_maven_central_url_and_file_name_follow_the_repository_layout():
    jar = Jar("org.apache.kafka", "kafka-clients", "3.4.1", "0" * 64)
    assert jar.url == "https://repo1.maven.org/maven2/org/apache/kafka/kafka-clients/3.4.1/kafka-clients-3.4.1.jar"
    assert jar.file_name == "kafka-clients-3.4.1.jar"


def test_a_download_is_cached_once_and_reused(tmp_path):
    data = b"PK\x03\x04 a jar"
    jar = Jar("g", "a", "1", hashlib.sha256(data).hexdigest())
    fetched = []

    def fetch(url):
        fetched.append(url)
        return data

    first = connector_jars.cached(jar, tmp_path, fetch)
    second = connector_jars.cached(jar, tmp_path, fetch)
    assert first == second and first.read_bytes() == data
    assert fetched == [jar.url]
    assert not list(first.parent.glob("*.partial"))


def test_a_download_whose_bytes_differ_from_the_lock_is_refused_and_not_cached(tmp_path):
    jar = Jar("g", "a", "1", hashlib.sha256(b"the real jar").hexdigest())
    with pytest.raises(JarError, match=r"has sha256 [0-9a-f]{64}, the lock pins g:a:1 at .*refusing it"):
        connector_jars.cached(jar, tmp_path, lambda url: b"something else")
    assert not any(tmp_path.rglob("*.jar"))


def test_a_tampered_cached_jar_is_refused(tmp_path):
    data = b"the real jar"
    jar = Jar("g", "a", "1", hashlib.sha256(data).hexdigest())
    path = connector_jars.cached(jar, tmp_path, lambda url: data)
    path.write_bytes(b"tampered")
    with pytest.raises(JarError, match="delete the file to download it again"):
        connector_jars.cached(jar, tmp_path, lambda url: data)


def test_the_cache_folder_can_be_set(monkeypatch, tmp_path):
    monkeypatch.setenv("HYDRO_JAR_CACHE", str(tmp_path))
    assert connector_jars.cache_dir() == tmp_path
