"""The jobs as Dataproc runs them, on the test YARN: spark-submit in client mode with the plan's properties.

Everything that sizes a container comes from the stack's plan (the Dataproc cluster's
`override_properties` and each job's `pysparkConfig.properties`), the connector jars and the jobs'
package are the release's (matched to the plan's `jarFileUris` and `pythonFileUris` by name), and the
command lines are the jobs' own (docs/jobs.md). What differs from Dataproc is where things live:
yarn-site.xml from the minicluster, the Spark jars from pip's pyspark (`local:` as Dataproc's own
`spark.yarn.jars`), a local staging folder instead of HDFS, loopback addresses.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyspark
from hydrostream_jobs import contract
from prometheus_client.parser import text_string_to_metric_families

from infra.release import bundle, connector_jars
from infra.tools import mocks
from tests.kafka.broker import ROOT
from tests.kafka.pipeline import DEVICES_PER_FARM, FARMS, SHARES, ZONES_PER_FARM, Consumer
from tests.ports import free_port
from tests.yarn.minicluster import MiniYarn, NodeShape

CLUSTER = "gcp:dataproc/cluster:Cluster"
JOB = "gcp:dataproc/job:Job"
SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"
SPARK_JARS = Path(pyspark.__file__).parent / "jars"
# The application names the jobs give their sessions (jobs/consumer.py, jobs/producer.py).
APP_NAMES = {"consumer": "hydrostream-consumer", "producer": "hydrostream-producer"}


@dataclass(frozen=True)
class PlannedDataproc:
    """What a stack's plan gives YARN and Spark: the cluster's properties and workers, each job's."""

    stack: str
    cluster_properties: dict[str, str]
    workers: int
    job_properties: dict[str, dict[str, str]]     # "consumer" / "producer" -> Spark properties
    jar_names: tuple[str, ...]
    python_file_names: tuple[str, ...]
    max_offsets_per_trigger: int = 300

    @property
    def node_shape(self) -> NodeShape:
        """Each worker's NodeManager as the cluster's properties declare it."""
        return NodeShape(int(self.cluster_properties["yarn:yarn.nodemanager.resource.memory-mb"]),
                         int(self.cluster_properties["yarn:yarn.nodemanager.resource.cpu-vcores"]))

    def spark_properties(self, job: str) -> dict[str, str]:
        """The job's Spark conf on Dataproc: the cluster's `spark:` properties (spark-defaults.conf), then the
        job's own, which win."""
        defaults = {key.split(":", 1)[1]: value for key, value in self.cluster_properties.items()
                    if key.startswith("spark:")}
        return {**defaults, **self.job_properties[job]}


@functools.cache
def planned_dataproc(stack: str) -> PlannedDataproc:
    """The Dataproc cluster's and the two jobs' inputs from `stack`'s plan (make plan's own program), planned
    once per test process (the tests read it, never change it)."""
    planned = mocks.run_plan(stack)
    (cluster,) = planned.of_type(CLUSTER)
    config = cluster.inputs["clusterConfig"]
    jobs: dict[str, dict] = {}
    for job in planned.of_type(JOB):
        main = job.inputs["pysparkConfig"]["mainPythonFileUri"].rsplit("/", 1)[1]
        jobs[main.removesuffix(".py")] = job.inputs["pysparkConfig"]
    assert sorted(jobs) == ["consumer", "producer"], sorted(jobs)
    jar_names = {uri.rsplit("/", 1)[1] for job in jobs.values() for uri in job["jarFileUris"]}
    consumer_args = jobs["consumer"]["args"]
    max_offsets = int(consumer_args[consumer_args.index("--max-offsets-per-trigger") + 1])
    python_names = {uri.rsplit("/", 1)[1] for job in jobs.values() for uri in job["pythonFileUris"]}
    return PlannedDataproc(
        stack=stack,
        cluster_properties=dict(config["softwareConfig"]["overrideProperties"]),
        workers=int(config["workerConfig"]["numInstances"]),
        job_properties={name: dict(job["properties"]) for name, job in jobs.items()},
        jar_names=tuple(sorted(jar_names)), python_file_names=tuple(sorted(python_names)),
        max_offsets_per_trigger=max_offsets,
    )


def release_files(workdir: Path, jar_names: tuple[str, ...], python_file_names: tuple[str, ...]
                  ) -> tuple[list[Path], list[Path]]:
    """The release's connector jars (from the locked cache), the jobs' package zip and the Python wheels
    (from the locked cache, under the `.zip` names they ship as), named as the plan names them; a name the
    release does not have fails here."""
    jars = {path.name: path for path in (connector_jars.cached(jar) for jar in connector_jars.release_jars())}
    missing = sorted(set(jar_names) - set(jars))
    assert not missing, f"the plan ships jars the release does not have: {missing}"
    workdir.mkdir(parents=True, exist_ok=True)
    package = workdir / bundle.PACKAGE_ZIP
    package.write_bytes(bundle.package_zip(ROOT / "jobs" / "hydrostream_jobs"))
    python_files = {package.name: package}
    for wheel in bundle.shipped_wheels():
        shipped = workdir / wheel.shipped_name
        shipped.write_bytes(connector_jars.cached(wheel).read_bytes())
        python_files[shipped.name] = shipped
    assert sorted(python_file_names) == sorted(python_files), python_file_names
    return [jars[name] for name in jar_names], [python_files[name] for name in python_file_names]


@dataclass
class Submission:
    """How a job reaches the test YARN: spark-submit's arguments and environment."""

    yarn: MiniYarn
    properties: dict[str, str]
    jars: list[Path]
    py_files: list[Path]
    staging: Path

    def argv(self, entry: str, *args: str) -> list[str]:
        conf = {
            **self.properties,
            # Dataproc's spark-defaults.conf points at the image's jars the same way.
            "spark.yarn.jars": f"local:{SPARK_JARS}/*",
            "spark.yarn.stagingDir": self.staging.as_uri(),
            "spark.ui.enabled": "false",
        }
        words = [str(SPARK_SUBMIT), "--master", "yarn"]
        for key, value in conf.items():
            words += ["--conf", f"{key}={value}"]
        words += ["--jars", ",".join(map(str, self.jars)), "--py-files", ",".join(map(str, self.py_files))]
        return [*words, str(ROOT / "jobs" / entry), *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "HADOOP_CONF_DIR": str(self.yarn.conf_dir), "PYSPARK_PYTHON": sys.executable}


@dataclass
class YarnConsumer(Consumer):
    """tests/kafka's consumer (same command line, same metrics), submitted to YARN instead of local Spark."""

    submission: Submission | None = None

    def start(self) -> None:
        assert self.submission is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        log = (self.workdir / "consumer.log").open("a")
        self.process = subprocess.Popen(
            self.submission.argv("consumer.py", *self.argv()), env=self.submission.env(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()


@dataclass
class YarnProducer:
    """`producer.py --sink kafka` sending until stopped, submitted to YARN."""

    workdir: Path
    submission: Submission
    bootstrap: str
    topic: str
    rate: int = 100
    process: subprocess.Popen | None = None
    metrics_port: int = field(default=0)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        args = ["--sink", "kafka", "--bootstrap-servers", self.bootstrap, "--topic", self.topic,
                "--rate", str(self.rate), "--farms", str(FARMS), "--zones-per-farm", str(ZONES_PER_FARM),
                "--devices-per-farm", str(DEVICES_PER_FARM), "--seed", "11", *SHARES,
                "--checkpoint-location", str(self.workdir / "checkpoint"),
                "--metrics-port", str(self.metrics_port)]
        log = (self.workdir / "producer.log").open("a")
        self.process = subprocess.Popen(
            self.submission.argv("producer.py", *args), env=self.submission.env(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def sent(self) -> float | None:
        """Its own count of messages written (hydro_producer_messages_sent_total, from its metrics endpoint);
        None while the endpoint does not answer. Cheap to poll, unlike Kafka's tools (a JVM per call)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == contract.PRODUCER_MESSAGES_SENT_TOTAL)

    def log(self, tail: int = 5000) -> str:
        path = self.workdir / "producer.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM to its process group (spark-submit, Python, the driver's JVM); SIGKILL if it lingers."""
        if self.process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(30)
        self.process = None
        return code


def wait_for_application(yarn: MiniYarn, name: str, predicate, alive: subprocess.Popen | None,
                         log, timeout: float = 600) -> dict:
    """Poll the ResourceManager until the newest application called `name` satisfies `predicate`."""
    deadline = time.time() + timeout
    last: dict | None = None
    while time.time() < deadline:
        apps = [app for app in yarn.report()["applications"] if app["name"] == name]
        if apps:
            last = max(apps, key=lambda app: app["id"])
            if predicate(last):
                return last
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{name} exited with {alive.returncode} before YARN gave it what it asked "
                                 f"for; its application: {last}\n{log()}")
        time.sleep(1)
    raise AssertionError(f"after {timeout:.0f}s YARN had not given {name} what it asked for: {last}\n{log()}")
