"""A real single-node KRaft broker of the catalog's Kafka version, from Maven Central jars, for the tests.

Each broker loads the stacks' metrics agent (the Prometheus JMX exporter jar that
infra/release/broker-agent.lock pins, sha256-checked in the cache, with the stacks' one config
monitoring/kafka/jmx-exporter.yml) and serves its own metrics on `metrics_url`, as a broker VM does.

`python -m tests.kafka.broker --fetch` resolves the broker's jars, the metrics agent and Spark's Kafka
connector into the caches the tests reuse (CI runs it before the tests, so a test never waits on a
download).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import string
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra import catalog
from infra.release import connector_jars
from infra.services.kafka import METRICS_AGENT_CONFIG, TopicSpec
from tests.maven import resolved_jars
from tests.ports import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("HYDRO_CACHE", Path.home() / ".cache" / "hydrostream"))
KAFKA_VERSION = catalog.KAFKA.image.rsplit(":", 1)[1]
KAFKA_LIBS = CACHE / f"kafka-{KAFKA_VERSION}"
# The Ivy cache spark.jars.packages resolves into; kept between runs.
IVY_CACHE = CACHE / "ivy"
CONNECTOR = catalog.DATAPROC_IMAGE.kafka_connector
TOOLS_BIN = HERE / "bin"
TOPICS_SCRIPT = ROOT / "infra" / "render" / "templates" / "kafka-topics.sh"
BROKER_HEAP = "-Xmx512m -Xms128m"
STOP_GRACE_SECONDS = 30


def kafka_libs() -> Path:
    """The folder of the broker's jars, resolved by Maven from Maven Central on first use."""
    return resolved_jars(KAFKA_LIBS, HERE / "pom.xml", {"kafka.version": KAFKA_VERSION},
                         f"kafka_2.13-{KAFKA_VERSION}.jar", f"Kafka {KAFKA_VERSION}", timeout=900)


def metrics_agent_jar() -> Path:
    """The locked metrics agent jar in the jar cache (downloaded on first use, sha256-checked each time)."""
    return connector_jars.cached(connector_jars.broker_agent())


def spark_kafka_conf() -> list[str]:
    """spark-submit arguments that put the catalog's Kafka connector on a job's classpath."""
    return ["--packages", CONNECTOR, "--conf", f"spark.jars.ivy={IVY_CACHE}"]


def fetch_connector() -> None:
    """Resolve the connector into the Ivy cache once, the way every job run resolves it."""
    code = (
        "from pyspark.sql import SparkSession\n"
        "SparkSession.builder.master('local[1]').getOrCreate().stop()\n"
    )
    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": " ".join([*spark_kafka_conf(), "pyspark-shell"])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"could not resolve {CONNECTOR}:\n{done.stderr[-3000:]}")


def cluster_id() -> str:
    """A fresh cluster id in Kafka's Uuid text form (URL-safe base64 of 16 bytes, unpadded).

    Never one starting with '-': the storage tool would read it as a flag (about 1 draw in 64).
    """
    while True:
        drawn = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not drawn.startswith("-"):
            return drawn


def tools_env() -> dict[str, str]:
    """The environment under which infra/render/templates/kafka-topics.sh finds the thin tool wrappers."""
    return {**os.environ, "KAFKA_BIN": str(TOOLS_BIN), "KAFKA_LIBS": str(kafka_libs())}


def run_tool(
    tool: str, *args: str, input_text: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run one of the wrappers in tests/kafka/bin (kafka-topics.sh, kafka-configs.sh, ...)."""
    return subprocess.run(
        [str(TOOLS_BIN / tool), *args], env=tools_env(), input=input_text, capture_output=True, text=True,
        timeout=timeout,
    )


def create_topics(broker: Broker, *topics: TopicSpec) -> subprocess.CompletedProcess:
    """Run the stacks' topic script (infra/render/templates/kafka-topics.sh) against the test broker."""
    specs = [f"{t.name}:{t.partitions}:{t.retention_ms}" for t in topics]
    done = subprocess.run(
        ["bash", str(TOPICS_SCRIPT), broker.bootstrap_servers, *specs],
        env=tools_env(), capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka-topics.sh failed:\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class Broker:
    """One KRaft broker+controller process on 127.0.0.1; its storage survives stop() and start()."""

    workdir: Path
    broker_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0
    jaas: Path | None = None  # the broker JVM's JAAS file, on a broker that authenticates its clients

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def metrics_address(self) -> str:
        """host:port of the broker's metrics agent, as a Prometheus target names it."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    def _java(self, main: str, *args: str, heap: str) -> list[str]:
        """A JVM command line over the Kafka jars; the broker's (kafka.Kafka) loads the metrics agent, as
        KAFKA_OPTS makes it on a VM (`catalog.KAFKA_METRICS_AGENT`), on its own loopback port."""
        agent = ([f"-javaagent:{metrics_agent_jar()}={self.metrics_address}:{METRICS_AGENT_CONFIG}"]
                 if main == "kafka.Kafka" else [])
        if main == "kafka.Kafka" and self.jaas is not None:
            agent.append(f"-Djava.security.auth.login.config={self.jaas}")
        return [
            "java", *heap.split(), "-XX:+UseSerialGC", *agent,
            f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}",
            "-cp", f"{kafka_libs()}/*", main, *args,
        ]

    def format(self) -> None:
        """Render server.properties and format a fresh storage directory with a new cluster id."""
        data = self.workdir / "data"
        shutil.rmtree(data, ignore_errors=True)
        template = string.Template((HERE / "server.properties").read_text())
        config = self.workdir / "server.properties"
        config.write_text(template.substitute(
            broker_port=self.broker_port, controller_port=self.controller_port, log_dir=data))
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--cluster-id", cluster_id(),
                       "--config", str(config), heap="-Xmx256m"),
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout: float = 90) -> None:
        """Start the broker on its ports and wait until it answers a metadata request."""
        if self.process is not None:
            raise RuntimeError("the broker is already running")
        log = self.log_file.open("a")
        offset = log.tell()
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.workdir / "server.properties"), heap=BROKER_HEAP),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.starts += 1
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with {self.process.returncode}:\n{self.tail()}")
            with self.log_file.open(errors="replace") as text:
                text.seek(offset)
                if "Kafka Server started" in text.read():
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the broker did not start within {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM, wait for a clean shutdown, SIGKILL if it does not come."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def tail(self, lines: int = 60) -> str:
        """The end of the broker's log, for failure messages."""
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str]) -> None:
    """--fetch: fill the caches the Kafka tests use (the broker's jars, its metrics agent and Spark's
    connector)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", required=True)
    parser.parse_args(argv)
    print(f"Kafka {KAFKA_VERSION} jars: {kafka_libs()}")
    print(f"metrics agent: {metrics_agent_jar()}")
    fetch_connector()
    print(f"{CONNECTOR}: {IVY_CACHE}")


if __name__ == "__main__":
    main(sys.argv[1:])
