"""kafka-start.sh, the command of every stack's broker container (a VM's, the local stack's), run for real.

The apache/kafka 3.9 image's layout is laid out in a folder (`HYDRO_IMAGE_ROOT`): its /opt/kafka/bin runs
the Maven Central jars of the catalog's Kafka version, so the image's own KafkaDockerWrapper (in those jars)
writes server.properties from the stack's broker environment (`KafkaSpec.env` and the node's) and refuses
to format, as in the image. Stand-ins: the image's two environment scripts (in 3.9, configureDefaults only
defaults CLUSTER_ID and configure only checks variables), and the listeners' ports (free ones, not the
catalog's). Then the broker's boot unit (kafka-setup.sh with `kafka_setup_args`) sets topics, users and
ACLs, and a restart (a reboot) starts the formatted node again.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from infra import catalog
from infra.services import kafka as kafka_service
from infra.services.kafka import KafkaNode, KafkaSpec
from tests.kafka.broker import BROKER_HEAP, HERE, kafka_libs, metrics_agent_jar
from tests.kafka.cluster import TEMPLATES, Logins
from tests.ports import free_port

pytestmark = pytest.mark.slow

TOOLS = ("kafka-storage.sh", "kafka-metadata-quorum.sh", "kafka-topics.sh", "kafka-configs.sh",
         "kafka-acls.sh")
STARTED = "Kafka Server started"


def image_root(folder: Path) -> Path:
    """The image's paths below `folder`: Kafka's bin (the distribution's scripts over the test jars: the JVM
    options from KAFKA_HEAP_OPTS and KAFKA_OPTS, as the distribution's kafka-run-class.sh takes them), its
    empty config folder, the two environment scripts and the empty mounted-config folder."""
    bin_dir = folder / "opt" / "kafka" / "bin"
    bin_dir.mkdir(parents=True)
    (folder / "opt" / "kafka" / "config").mkdir()
    (folder / "mnt" / "shared" / "config").mkdir(parents=True)
    docker = folder / "etc" / "kafka" / "docker"
    docker.mkdir(parents=True)
    (docker / "configureDefaults").write_text(': "${CLUSTER_ID:?the image defaults it; the stack sets it}"\n')
    (docker / "configure").write_text(': "${KAFKA_PROCESS_ROLES:?}"\n')
    scripts = {
        "kafka-run-class.sh": (
            '# shellcheck disable=SC2086\n'
            f'exec java ${{KAFKA_HEAP_OPTS:--Xmx256m}} -XX:+UseSerialGC ${{KAFKA_OPTS:-}} '
            f'"-Dlog4j.configuration=file:${{KAFKA_LOG4J:-{HERE / "tools-log4j.properties"}}}" '
            f'-cp "{kafka_libs()}/*" "$@"'),
        "kafka-server-start.sh": (f'KAFKA_LOG4J={HERE / "log4j.properties"} '
                                  'exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"'),
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
    for name in TOOLS:
        (bin_dir / name).write_text((HERE / "bin" / name).read_text())
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    return folder


class StartedNode:
    """One broker started by kafka-start.sh as a stack's container runs it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.root = image_root(workdir / "image")
        self.logins = Logins.create(workdir)
        self.sasl = workdir / "start-sasl"   # kafka-start.sh's own login files (SASL_DIR)
        self.data = workdir / "data"
        broker, controller, self.metrics_port = free_port(), free_port(), free_port()
        listeners = (catalog.KafkaListener("PLAINTEXT", broker),
                     catalog.KafkaListener("CONTROLLER", controller, controller=True))
        self.spec = KafkaSpec(catalog.KAFKA, kafka_service.MIN_HEAP_MB,
                              kafka_service.topics(_Topics()), listeners=listeners)
        self.node = KafkaNode(1, "zone-a", (f"localhost:{controller}",), 1)
        self.bootstrap = f"127.0.0.1:{broker}"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The container's environment as a broker VM's unit gives it (the spec's and the node's), with
        the test's log folder, heap and metrics agent; nothing else of this process's KAFKA_* leaks in."""
        env = self.spec.env({"PLAINTEXT": "127.0.0.1"}, self.node)
        env.update(KAFKA_LOG_DIRS=str(self.data), KAFKA_HEAP_OPTS=BROKER_HEAP,
                   KAFKA_OPTS=f"-javaagent:{metrics_agent_jar()}=127.0.0.1:{self.metrics_port}:"
                              f"{kafka_service.METRICS_AGENT_CONFIG}")
        kept = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
        return {**kept, **env, "HYDRO_IMAGE_ROOT": str(self.root)}

    def start(self, timeout: float = 180) -> str:
        """Run the container's command (kafka_start_command) until the broker has started; its log."""
        script, initial, admin, _secrets, _sasl = kafka_service.kafka_start_command(self.node)
        log = self.workdir / "start.log"
        offset = log.stat().st_size if log.exists() else 0
        with log.open("a") as out:
            self.process = subprocess.Popen(
                ["bash", str(TEMPLATES / script), initial, admin, str(self.logins.secrets), str(self.sasl)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = log.read_text(errors="replace")[offset:]
            if STARTED in text:
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"kafka-start.sh exited with {self.process.returncode}:\n{text[-4000:]}")
            time.sleep(0.5)
        raise AssertionError(f"the broker did not start within {timeout}s:\n{log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def tool(self, name: str, *args: str) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
        return subprocess.run([str(self.root / "opt" / "kafka" / "bin" / name), *args], env=env,
                              capture_output=True, text=True, timeout=120)


class _Topics:
    """The stacks' topics of one broker: two partitions, a day's retention."""

    partitions = 2
    retention_hours = 24
    dead_letter_retention_hours = 24
    replication_factor = 1
    min_isr = 1


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    node = StartedNode(tmp_path_factory.mktemp("kafka-start"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


def test_the_wrapper_writes_the_stacks_broker_config_from_its_environment(started):
    config = (started.root / "opt" / "kafka" / "config" / "server.properties").read_text()
    properties = dict(line.split("=", 1) for line in config.splitlines() if "=" in line)
    # Written out by hand: SASL on every listener, PLAIN on the controller's, the KRaft authorizer.
    assert properties["listener.security.protocol.map"] == (
        "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT")
    assert properties["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert properties["super.users"] == "User:hydro-admin"
    # A dynamic quorum: found through the bootstrap servers, never a static voter list.
    assert "controller.quorum.voters" not in properties
    assert properties["controller.quorum.bootstrap.servers"] == started.node.voters[0]


def test_the_first_start_formats_with_the_initial_directory_id(started):
    meta = (started.data / "meta.properties").read_text()
    directory = re.search(r"^directory\.id=(\S+)$", meta, re.MULTILINE).group(1)
    assert started.node.initial_controllers.endswith(f":{directory}")


def test_the_login_files_are_private_and_the_broker_alone_loads_the_metrics_agent(started):
    assert stat.S_IMODE(started.sasl.stat().st_mode) == 0o700
    for path in started.sasl.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # KAFKA_OPTS reached the broker's JVM (its agent serves), not the setup and format JVMs (which would
    # have failed on the agent's port while the broker held it: the restart below runs them again).
    with urllib.request.urlopen(f"http://127.0.0.1:{started.metrics_port}/metrics", timeout=10) as answer:
        assert b"kafka_server" in answer.read()


def test_the_boot_unit_sets_the_topics_users_and_acls_logged_in_as_the_admin(started):
    args = kafka_service.kafka_setup_args(started.spec, started.bootstrap, str(started.logins.secrets))
    env = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    done = subprocess.run(["bash", str(TEMPLATES / "kafka-setup.sh"), *args],
                          env={**env, "KAFKA_BIN": str(started.root / "opt" / "kafka" / "bin")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # The admin, with the client config kafka-start.sh wrote (what scripts/kafka-broker-gcp.sh uses).
    listed = started.tool("kafka-topics.sh", "--bootstrap-server", started.bootstrap,
                          "--command-config", str(started.sasl / "admin.properties"), "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {topic.name for topic in started.spec.topics} <= set(listed.stdout.split())
    quorum = started.tool("kafka-metadata-quorum.sh", "--bootstrap-controller", started.node.voters[0],
                          "--command-config", str(started.sasl / "controller.properties"),
                          "describe", "--status")
    assert quorum.returncode == 0, quorum.stderr[-2000:]
    assert re.search(r"^LeaderId:\s*1$", quorum.stdout, re.MULTILINE)
    # The producer's own login works and sees the one topic it may describe; a wrong password is refused.
    readings, dead_letters = (topic.name for topic in started.spec.topics)
    producer = started.tool("kafka-topics.sh", "--bootstrap-server", started.bootstrap, "--command-config",
                            str(started.logins.client_config(kafka_service.PRODUCER_USER)), "--list")
    assert producer.returncode == 0, producer.stderr[-2000:]
    assert readings in producer.stdout.split() and dead_letters not in producer.stdout.split()
    wrong = started.logins.client_config(kafka_service.PRODUCER_USER, "not-the-password")
    wrong.write_text(wrong.read_text() + "default.api.timeout.ms=15000\nrequest.timeout.ms=5000\n")
    refused = started.tool("kafka-topics.sh", "--bootstrap-server", started.bootstrap, "--command-config",
                           str(wrong), "--list")
    assert refused.returncode != 0 and "authentication failed" in refused.stderr.lower(), refused.stderr


def test_a_restart_starts_the_formatted_node_again(started):
    meta = (started.data / "meta.properties").read_text()
    started.stop()
    log = started.start()
    # The format step found the node formatted and left it alone.
    assert "is formatted" in log
    assert (started.data / "meta.properties").read_text() == meta
    listed = started.tool("kafka-topics.sh", "--bootstrap-server", started.bootstrap,
                          "--command-config", str(started.sasl / "admin.properties"), "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
