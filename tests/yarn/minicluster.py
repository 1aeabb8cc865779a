"""A real YARN for the tests: Hadoop's MiniYARNCluster of the Dataproc image's Hadoop, from Maven Central.

`python -m tests.yarn.minicluster --fetch` resolves the jars into the cache the tests reuse (CI runs it
before the tests). The cluster runs in one JVM (tests/yarn/MiniYarn.java, compiled once into the cache):
a ResourceManager and NodeManagers declaring the memory and vcores they are given. NodeManager memory is
declared, not reserved: the containers' JVMs use what they touch, and MiniYARNCluster turns off the
NodeManagers' physical and virtual memory checks unless told otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.kafka.broker import CACHE
from tests.maven import resolved_jars

HERE = Path(__file__).resolve().parent
# Dataproc 2.2 images run Hadoop 3.3.6 (the image version list of Dataproc 2.2.x); the catalog pins
# the image (infra/catalog.py DATAPROC_IMAGE), whose Spark is the pyspark the jobs run.
HADOOP_VERSION = "3.3.6"
HADOOP_LIBS = CACHE / f"hadoop-minicluster-{HADOOP_VERSION}"
LAUNCHER = HERE / "MiniYarn.java"
# Java 17 closes the JDK's internals that Hadoop 3.3 reflects into (its own JVM-wide tests use these).
ADD_OPENS = [f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
    "java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
    "java.util.concurrent", "java.util.concurrent.atomic", "sun.nio.ch", "sun.net.dns", "sun.net.util",
    "sun.security.action", "jdk.internal.misc",
)]
CLUSTER_HEAP = "-Xmx768m"
# The ResourceManager and NodeManagers do little work: the client compiler alone (no C2 threads competing
# with the jobs' JVMs for the two cores) and one GC thread.
CLUSTER_JIT = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
START_TIMEOUT = 240


def hadoop_libs() -> Path:
    """The folder of the minicluster's jars, resolved by Maven from Maven Central on first use."""
    return resolved_jars(HADOOP_LIBS, HERE / "pom.xml", {"hadoop.version": HADOOP_VERSION},
                         f"hadoop-yarn-server-tests-{HADOOP_VERSION}-tests.jar",
                         f"hadoop-minicluster {HADOOP_VERSION}", timeout=1800)


def launcher_classes() -> Path:
    """MiniYarn.java compiled against the minicluster's jars, cached by the source's digest."""
    digest = hashlib.sha256(LAUNCHER.read_bytes()).hexdigest()[:16]
    classes = CACHE / f"miniyarn-{digest}"
    if (classes / "MiniYarn.class").exists():
        return classes
    partial = classes.with_name(classes.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    done = subprocess.run(
        ["javac", "-cp", f"{hadoop_libs()}/*", "-d", str(partial), str(LAUNCHER)],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"javac could not compile {LAUNCHER.name}:\n{done.stdout}{done.stderr}")
    shutil.rmtree(classes, ignore_errors=True)
    partial.rename(classes)
    return classes


@dataclass(frozen=True)
class NodeShape:
    """What each NodeManager declares to the ResourceManager."""

    memory_mb: int
    vcores: int


def yarn_properties(shape: NodeShape, cluster_properties: dict[str, str],
                    overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The minicluster's configuration: the Dataproc cluster's YARN and capacity-scheduler properties
    (`yarn:` and `capacity-scheduler:` prefixes, which Dataproc writes to yarn-site.xml and
    capacity-scheduler.xml), the NodeManagers' size, then a test's own `overrides` (named in the test)."""
    config = {key.split(":", 1)[1]: value for key, value in cluster_properties.items()
              if key.split(":", 1)[0] in ("yarn", "capacity-scheduler")}
    config.update({
        # MiniYARNCluster gives each NodeManager this, whatever yarn.nodemanager.resource.memory-mb says.
        "yarn.minicluster.yarn.nodemanager.resource.memory-mb": str(shape.memory_mb),
        "yarn.nodemanager.resource.memory-mb": str(shape.memory_mb),
        "yarn.nodemanager.resource.cpu-vcores": str(shape.vcores),
        # Several NodeManagers on one host are several nodes to the scheduler, as separate workers are.
        "yarn.scheduler.include-port-in-node-name": "true",
        # A nearly full disk on the test machine would mark every node unhealthy and run nothing.
        "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "100.0",
    })
    config.update(overrides or {})
    return config


@dataclass
class MiniYarn:
    """One MiniYARNCluster JVM; `conf_dir` holds the yarn-site.xml its clients (spark-submit) read."""

    workdir: Path
    shape: NodeShape
    node_managers: int
    cluster_properties: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    node_ids: list[str] = field(default_factory=list)

    @property
    def conf_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "miniyarn.log"

    def start(self) -> None:
        """Start the cluster and wait until every NodeManager has registered and yarn-site.xml exists."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        config = yarn_properties(self.shape, self.cluster_properties, self.overrides)
        properties = self.workdir / "yarn.properties"
        # java.util.Properties text: every key and value here is plain ASCII without separators.
        properties.write_text("".join(f"{key}={value}\n" for key, value in sorted(config.items())))
        classpath = f"{launcher_classes()}:{hadoop_libs()}/*"
        stderr = self.log_file.open("a")
        self.process = subprocess.Popen(
            ["java", CLUSTER_HEAP, *CLUSTER_JIT, *ADD_OPENS,
             f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}", "-cp", classpath, "MiniYarn",
             str(self.node_managers), str(properties), str(self.conf_dir / "yarn-site.xml")],
            cwd=self.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True,
        )
        stderr.close()
        deadline = time.time() + START_TIMEOUT
        assert self.process.stdout is not None
        for line in self.process.stdout:
            words = line.split()
            if words[:1] == ["NM"]:
                self.node_ids.append(words[2])
            if words == ["READY"]:
                return
            if time.time() > deadline:
                break
        self.stop()
        raise RuntimeError(f"the MiniYARNCluster did not start within {START_TIMEOUT}s:\n{self.tail()}")

    def _command(self, command: str, answer: str) -> str:
        """Send one command to the launcher and return the rest of its answer line."""
        assert self.process is not None and self.process.stdin is not None and self.process.stdout
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()
        while line := self.process.stdout.readline():
            if line.startswith(answer):
                return line[len(answer):].strip()
        raise RuntimeError(f"the minicluster ended while answering {command!r}:\n{self.tail()}")

    def report(self) -> dict:
        """The ResourceManager's state: scheduler limits, nodes, applications with containers and asks."""
        return json.loads(self._command("report", "REPORT "))

    def application(self, name: str) -> dict:
        """The one application called `name`, from report()."""
        (found,) = [app for app in self.report()["applications"] if app["name"] == name]
        return found

    def stop_node_manager(self, node_id: str) -> None:
        """Stop one NodeManager (it unregisters and its containers end), as a worker that went away."""
        self._command(f"stop-nm {node_id}", f"STOPPED {node_id}")

    def stop(self) -> None:
        """Close its input (it exits, stopping its services first if a container still runs); kill it if it
        does not."""
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            # Up to 30 s for the containers to end, then (if one did not) about 17 s per NodeManager.
            self.process.wait(30 + 20 * self.node_managers)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def tail(self, lines: int = 60) -> str:
        """The end of the cluster's log, for failure messages."""
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str]) -> None:
    """--fetch: fill the cache the YARN tests use (the minicluster's jars, the compiled launcher)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", required=True)
    parser.parse_args(argv)
    started = time.monotonic()
    print(f"hadoop-minicluster {HADOOP_VERSION} jars: {hadoop_libs()}")
    print(f"MiniYarn launcher: {launcher_classes()} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
