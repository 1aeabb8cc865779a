"""The jobs' real command lines against the test broker: run, watch through the metrics endpoint, stop."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.jobs.conftest import LOCAL_MASTER, SHUFFLE_PARTITIONS
from tests.kafka.broker import ROOT, run_tool, spark_kafka_conf
from tests.ports import free_port

# Small and fixed, so every run of a test sends the same messages.
FARMS, ZONES_PER_FARM, DEVICES_PER_FARM, RATE = 2, 4, 5, 10
FLEET = ("--farms", str(FARMS), "--zones-per-farm", str(ZONES_PER_FARM),
         "--devices-per-farm", str(DEVICES_PER_FARM), "--seed", "11", "--rate", str(RATE))
SHARES = ("--malformed-share", "0.03", "--fault-share", "0.01")
FIRST_EVENT = "2026-01-01T00:00:00Z"


def job_env() -> dict[str, str]:
    """The environment of a job run: the catalog's connector from Maven Central, Ivy cache kept."""
    submit = [*spark_kafka_conf(), "--conf", f"spark.sql.shuffle.partitions={SHUFFLE_PARTITIONS}",
              "--conf", "spark.ui.enabled=false", "pyspark-shell"]
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_SUBMIT_ARGS": " ".join(submit)}


def command(entry: str, *args: str) -> list[str]:
    """The job's entry point as a user runs it, on local Spark."""
    return [sys.executable, str(ROOT / "jobs" / entry), *args, "--master", LOCAL_MASTER]


def run_job(entry: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a job to its end; fails the test with the job's stderr when it fails."""
    done = subprocess.run(
        command(entry, *args), env=job_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def producer_args(count: int, start_time: str = FIRST_EVENT) -> list[str]:
    """The producer's fleet, shares, count and first event time (the messages depend only on these)."""
    return [*FLEET, *SHARES, "--count", str(count), "--start-time", start_time, "--metrics-port", "0"]


def produce_to_kafka(bootstrap: str, topic: str, count: int, start_time: str = FIRST_EVENT,
                     login: tuple[str, ...] = ()) -> None:
    """`producer.py --sink kafka --count N`: N messages into the topic (logged in with `login`, the job's
    --kafka-user options)."""
    run_job("producer.py", "--sink", "kafka", "--bootstrap-servers", bootstrap, "--topic", topic,
            *producer_args(count, start_time), *login)


def fleet_messages(count: int, start_time: str = FIRST_EVENT) -> list[str]:
    """`count` messages of the producer's test fleet (FLEET) without a Spark process: RATE readings a
    second of event time from `start_time`, the devices in turn; every 29th malformed, one of the
    producer's ways in turn (cut in half, not JSON, a quoted number, no `ts`), every 97th out of
    range. For the tests whose subject is the consumer; the producer's own messages go through the
    others."""
    first = datetime.fromisoformat(start_time)
    messages = []
    for n in range(count):
        device = n % (FARMS * DEVICES_PER_FARM)
        instant = first + timedelta(microseconds=n * 1_000_000 // RATE)
        text = json.dumps({
            "farm_id": f"farm-{device // DEVICES_PER_FARM + 1:02d}",
            "zone": f"bay-{device % DEVICES_PER_FARM % ZONES_PER_FARM + 1}",
            "device_id": f"hp-{device + 1:04d}",
            "ts": instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z",
            "ph": round(5.5 + (n * 37 % 100) / 100, 2), "ec_ms_cm": round(1.2 + (n * 13 % 50) / 100, 2),
            "water_temp_c": 85.0 if n % 97 == 96 else round(18 + (n * 7 % 40) / 10, 1),
            "air_temp_c": 22.5, "humidity_pct": round(55 + (n * 11 % 200) / 10, 1),
            "light_ppfd": float(n * 29 % 900), "dissolved_oxygen_mg_l": 8.1,
        }, separators=(",", ":"))
        if n % 29 == 28:
            text = [text[: len(text) // 2], "sensor reboot: no json",
                    re.sub(r'"ph":([0-9.]+)', r'"ph":"\1"', text),
                    re.sub(r',"ts":"[^"]*"', "", text)][n // 29 % 4]
        messages.append(text)
    return messages


def topic_messages(bootstrap: str, topic: str, count: int, config: Path | None = None) -> list[bytes]:
    """Every message value in the topic, read back with Kafka's own console consumer (not Spark), with the
    client `config` (a login) when given."""
    login = ["--consumer.config", str(config)] if config else []
    done = run_tool(
        "kafka-console-consumer.sh", "--bootstrap-server", bootstrap, *login, "--topic", topic,
        "--from-beginning",
        "--max-messages", str(count), "--timeout-ms", "60000", "--property", "print.value=true",
        timeout=180,
    )
    # One JSON document (or malformed text) per line: the simulation never writes a newline.
    messages = done.stdout.encode("utf-8").split(b"\n")[:-1]
    assert len(messages) == count, f"read {len(messages)} of {count} messages:\n{done.stderr[-3000:]}"
    return messages


def offsets(bootstrap: str, topic: str, which: str, config: Path | None = None) -> dict[int, int]:
    """The topic's `earliest` or `latest` offset per partition, from Kafka's GetOffsetShell (with the client
    `config`, a login, when given)."""
    time_flag = {"earliest": "-2", "latest": "-1"}[which]
    login = ["--command-config", str(config)] if config else []
    done = run_tool(
        "kafka-get-offsets.sh", "--bootstrap-server", bootstrap, *login, "--topic", topic, "--time", time_flag
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = {}
    for line in done.stdout.split():
        _topic, partition, offset = line.rsplit(":", 2)
        found[int(partition)] = int(offset)
    return found


@dataclass
class Consumer:
    """`consumer.py --source kafka --sink influxdb` in its own process group, watched on its metrics port."""

    workdir: Path
    bootstrap: str
    topic: str
    influx_url: str
    influx_token: str
    influx_org: str
    influx_bucket: str
    trigger: str = "1s"
    max_offsets_per_trigger: int = 300
    fail_on_data_loss: bool = True
    window: str = "5m"
    slide: str = "1m"
    watermark: str = "10m"
    handover_from: Path | None = None  # the root of every release's folder (workdir is one of them)
    login: tuple[str, ...] = ()  # the job's --kafka-user options (none: a broker without authentication)
    process: subprocess.Popen | None = None
    metrics_port: int = 0

    @property
    def checkpoint(self) -> Path:
        return self.workdir / "checkpoints"

    @property
    def dead_letter_path(self) -> Path:
        return self.workdir / "dlq"

    def argv(self) -> list[str]:
        token = self.workdir / "token"
        token.write_text(f"{self.influx_token}\n")
        return [
            "--source", "kafka", "--bootstrap-servers", self.bootstrap, "--topic", self.topic,
            "--max-offsets-per-trigger", str(self.max_offsets_per_trigger),
            "--fail-on-data-loss", "true" if self.fail_on_data_loss else "false",
            "--sink", "influxdb", "--influx-url", self.influx_url, "--influx-org", self.influx_org,
            "--influx-bucket", self.influx_bucket, "--influx-token-file", str(token),
            "--influx-batch-lines", "500",
            "--dead-letter-path", str(self.dead_letter_path), "--checkpoint-location", str(self.checkpoint),
            "--trigger", self.trigger, "--window", self.window, "--slide", self.slide,
            "--watermark", self.watermark, "--metrics-port", str(self.metrics_port),
            *(["--handover-from", str(self.handover_from)] if self.handover_from else []),
            *self.login,
        ]

    def start(self) -> None:
        """Start the consumer on a fresh metrics port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        log = (self.workdir / "consumer.log").open("a")
        self.process = subprocess.Popen(
            command("consumer.py", *self.argv()), env=job_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def log(self, tail: int | None = 5000) -> str:
        """The consumer's output so far (all its runs), its last `tail` characters by default."""
        path = self.workdir / "consumer.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def metrics(self) -> dict[tuple[str, tuple], float] | None:
        """The consumer's samples by (name, labels), None while the endpoint does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def records(self, samples: dict) -> float:
        """Messages this process consumed so far (valid and quarantined)."""
        return sum(samples.get(("hydro_consumer_records_total", (("status", s),)), 0.0)
                   for s in ("valid", "quarantined"))

    def wait_for(self, predicate, timeout: float = 600, every: float = 0.5) -> list[dict]:
        """Scrape until `predicate(samples)` holds; returns every scrape taken. Fails if the job dies."""
        scrapes: list[dict] = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the consumer exited with {self.process.returncode}:\n{self.log()}")
            samples = self.metrics()
            if samples is not None:
                scrapes.append(samples)
                if predicate(samples):
                    return scrapes
            time.sleep(every)
        raise AssertionError(f"timed out waiting on the consumer's metrics:\n{self.log()}")

    def signal(self, sig: signal.Signals) -> int:
        """Send `sig` to the consumer's process group (Python and its Spark JVM) and wait for it."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # it may have ended on its own
            os.killpg(self.process.pid, sig)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(30)
        self.process = None
        return code

    def stop(self) -> None:
        """Stop a running consumer (SIGTERM to its group); nothing is left behind."""
        if self.process is not None:
            self.signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 240) -> int:
        """Wait until the consumer ends on its own (available-now, or a failed query)."""
        assert self.process is not None
        code = self.process.wait(timeout)
        self.process = None
        return code


def committed_offsets(checkpoint: Path, topic: str) -> list[dict[int, int]]:
    """Per batch, the end offsets by partition the query recorded in its offset log (the real progress)."""
    folder = checkpoint / "consumer" / "offsets"
    batches = []
    for path in sorted(folder.glob("[0-9]*"), key=lambda p: int(p.name)):
        # v1, the batch's metadata, then one line per source: {"topic": {"0": 12, "1": 9}}
        source = json.loads(path.read_text().splitlines()[2])
        batches.append({int(partition): offset for partition, offset in source[topic].items()})
    return batches


def timestamped_offsets(bootstrap: str, topic: str, count: int) -> list[tuple[int, int, int]]:
    """(partition, offset, Kafka record timestamp in ms) of every message, from Kafka's console consumer."""
    done = run_tool(
        "kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning",
        "--max-messages", str(count), "--timeout-ms", "60000", "--property", "print.value=false",
        "--property", "print.timestamp=true", "--property", "print.partition=true",
        "--property", "print.offset=true", timeout=180,
    )
    found = []
    for line in done.stdout.splitlines():
        fields = dict(field.split(":", 1) for field in line.split("\t") if ":" in field)
        found.append((int(fields["Partition"]), int(fields["Offset"]), int(fields["CreateTime"])))
    assert len(found) == count, f"read {len(found)} of {count} messages:\n{done.stderr[-3000:]}"
    return found


def initial_offsets(checkpoint: Path, topic: str) -> dict[int, int]:
    """Where the query's Kafka source started, by partition (Spark's `sources/0/0` of the checkpoint)."""
    text = (checkpoint / "consumer" / "sources" / "0" / "0").read_text(errors="replace")
    source = json.loads(text[text.index("{"):].splitlines()[0])
    return {int(partition): offset for partition, offset in source[topic].items()}


def dead_letters(folder: Path) -> list[dict]:
    """Every dead-letter record the consumer wrote."""
    records = []
    for path in glob.glob(f"{folder}/batch=*/part-*"):
        with open(path, encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle]
    return records


def send_lines(bootstrap: str, topic: str, lines: list[str]) -> None:
    """Write one message per line with Kafka's own console producer (acks=all), not through Spark."""
    done = run_tool(
        "kafka-console-producer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
        "--producer-property", "acks=all", input_text="".join(f"{line}\n" for line in lines), timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
