"""The Kafka connector jars a release ships, and the brokers' metrics agent: pinned with sha256 in lock files,
cached from Maven Central.

Jobs get the jars as `jar_file_uris` from the release's own folder in Cloud Storage (Dataproc) or as files
in the container (local stack), so a job start never resolves anything from Maven Central. Only the
deploying machine downloads them, once, into a cache; a jar whose bytes differ from the lock is refused.
The brokers' Prometheus JMX exporter agent (`broker_agent`) is locked apart (broker-agent.lock): it is no
part of a jobs release, so changing it changes no release digest.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from infra import catalog

LOCK: Final = Path(__file__).resolve().parent / "connector-jars.lock"
AGENT_LOCK: Final = Path(__file__).resolve().parent / "broker-agent.lock"
BROKER_AGENT_ARTIFACT: Final = "io.prometheus.jmx:jmx_prometheus_javaagent"
MAVEN_CENTRAL: Final = "https://repo1.maven.org/maven2"
DOWNLOAD_TIMEOUT_S: Final = 60
_LINE: Final = re.compile(r"([\w.-]+):([\w.-]+):([\w.-]+)\s+([0-9a-f]{64})")


class JarError(ValueError):
    """A lock line, a cached file or a download that is not what the lock says; the message says which."""


class Locked(Protocol):
    """A pinned download, a jar of this lock or a wheel (infra.release.python_wheels): what `cached` reads."""

    sha256: str

    @property
    def coordinate(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def file_name(self) -> str: ...


@dataclass(frozen=True)
class Jar:
    """One pinned Maven artifact (a plain jar) and the sha256 of its bytes."""

    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        group = self.group.replace(".", "/")
        return f"{MAVEN_CENTRAL}/{group}/{self.artifact}/{self.version}/{self.file_name}"


def lock_lines(lock: Path, pattern: re.Pattern[str], form: str,
               error: type[ValueError] = JarError) -> list[tuple[str, re.Match[str]]]:
    """Each line of a lock file that is neither blank nor a comment, matched by `pattern`, with where it
    is (`path:number`); a line that does not match is refused, naming where and the `form` expected."""
    lines = []
    for number, raw in enumerate(lock.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = pattern.fullmatch(line)
        if match is None:
            raise error(f"{lock}:{number}: expected `{form}`, got {line!r}")
        lines.append((f"{lock}:{number}", match))
    return lines


def locked_jars(lock: Path = LOCK) -> tuple[Jar, ...]:
    """The jars the lock file pins, in its order; a malformed line is named with its number."""
    jars = [Jar(*match.groups()) for _, match in lock_lines(lock, _LINE, "group:artifact:version sha256")]
    if not jars:
        raise JarError(f"{lock} pins no jar")
    return tuple(jars)


def release_jars(lock: Path = LOCK, image: catalog.DataprocImage = catalog.DATAPROC_IMAGE) -> tuple[Jar, ...]:
    """The locked jars, checked to hold the Kafka connector of the pinned Dataproc image's Spark and Scala."""
    jars = locked_jars(lock)
    spark_jars = {jar.coordinate for jar in jars if jar.group == "org.apache.spark"}
    expected = {image.kafka_connector,
                f"org.apache.spark:spark-token-provider-kafka-0-10_{image.scala}:{image.spark}"}
    if spark_jars != expected:
        raise JarError(f"{lock} pins Spark jars {sorted(spark_jars)}, but Dataproc image {image.version} "
                       f"(Spark {image.spark}, Scala {image.scala}) needs exactly {sorted(expected)}")
    return jars


def broker_agent(lock: Path = AGENT_LOCK) -> Jar:
    """The one jar the agent lock pins, checked to be the Prometheus JMX exporter's Java agent."""
    jars = locked_jars(lock)
    if len(jars) != 1 or f"{jars[0].group}:{jars[0].artifact}" != BROKER_AGENT_ARTIFACT:
        raise JarError(f"{lock} must pin exactly one {BROKER_AGENT_ARTIFACT}, got "
                       f"{[jar.coordinate for jar in jars]}")
    return jars[0]


def cache_dir() -> Path:
    """Where downloaded jars (and the wheels) are kept: $HYDRO_JAR_CACHE, else the user's cache folder."""
    configured = os.environ.get("HYDRO_JAR_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hydrostream" / "jars"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def cached(jar: Locked, directory: Path | None = None, fetch: Callable[[str], bytes] = _download) -> Path:
    """The file in the cache, downloaded first if missing; its sha256 must equal the lock's."""
    directory = cache_dir() if directory is None else directory
    path = directory / jar.sha256 / jar.file_name
    if path.is_file():
        found = _sha256(path)
        if found == jar.sha256:
            return path
        raise JarError(f"cached {path} has sha256 {found}, the lock pins {jar.coordinate} at {jar.sha256}: "
                       f"delete the file to download it again")
    data = fetch(jar.url)
    found = hashlib.sha256(data).hexdigest()
    if found != jar.sha256:
        raise JarError(f"{jar.url} has sha256 {found}, the lock pins {jar.coordinate} at {jar.sha256}: "
                       f"refusing it")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{jar.file_name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def main() -> int:
    """Download (or check) every locked jar into the cache and print where each one is."""
    try:
        for jar in (*release_jars(), broker_agent()):
            print(f"{jar.coordinate} {cached(jar)}")
    except (JarError, OSError) as error:
        print(f"connector jars: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
