"""Steady-state consumer capacity: one warm consumer per Spark master, fed through Kafka at stepped rates.

    .venv/bin/python benchmarks/steady_state.py --json /tmp/steady-state.json   # ~14 min, quiet, 2 cores
    .venv/bin/python benchmarks/steady_state.py --quick                         # does it run: ~4 min

The recorded figure comes from the first command exactly as written (its defaults: `--steps
2000,4000,8000 --step-seconds 60 --masters local[1],local[2] --warmup-batches 2 --producer-master
local[1]`), run once on a quiet machine: nothing else running, load average under 1 before it
starts. The times are estimates for such a machine; `--quick` took 13 min at load 14-34, 21 min
with `--keep-going` at load 27-35.

What runs, each a process of its real command line: the test suite's KRaft broker (tests/kafka/broker.py)
with the stacks' readings topic (`infra.services.kafka.topics` of the default Kafka settings: 6
partitions), one per master; the real influxd of the catalog's version (tests/influxdb), a bucket with the
consumer's write-only token from the stacks' token script; `jobs/consumer.py` with the stacks' own
arguments (`infra.job_commands.consumer_args` of the jobs settings' defaults: trigger, window, slide,
watermark) and `--master local[N]`, started once per master and kept running through its steps; one
`jobs/producer.py --sink kafka --rate R` per step (`producer_args`, on `--producer-master`), stopped
before the next starts. Overrides of the stacks' lines: a topic per master, metrics ports from
tests/ports.py, Spark's UI off (`spark.ui.enabled=false`, so no job takes a port below 10000), and the
connector by `--packages`. The Kafka read cap is what a stack configured for the highest step would
get (`JobsSettings.read_cap`: twice the rate's readings per trigger), so it binds only on a backlog
of more than a trigger: the steps measure the cores, not the cap.

Per step, the producer is started and given PRODUCER_SETTLE_S after its first send; the first
consumer batch planned after that (its start = its log line's time less its duration) starts the
step. The step then lasts `--step-seconds`, rounded up to whole triggers, so that its readings cover
every phase of the trigger once; the first step of a master starts only after `--warmup-batches`
batches with data, the last of them caught up (it read every offset there was when it started; at
most WARMUP_TIMEOUT_S): the cold JVM, the first plans and the backlog they leave. Reported per step:

- sent/s: what the producer sent from the step's start to its last batch's end (its
  `hydro_producer_messages_sent_total`, which grows by whole producer micro-batches);
- batch duration p50/p99 of the batches planned in the step, after the first (Spark's batchDuration,
  from the consumer's per-batch log lines: hydrostream_jobs/progress.py);
- event-to-sink latency p50/p99: a timing proxy in front of influxd (the jobs suite's FakeInflux in
  forwarding mode) notes when influxd accepted (204) each `sensor_readings` line; latency = that time
  less the reading's event time (the line's timestamp; the producer's rate source stamps each
  reading with the instant it is due, so the producer's own delay is part of it). Readings whose
  event time falls in the step, shifted back by SEND_LAG_S (a reading is in Kafka up to about 3 s
  after its event time: the rate source emits a second once it has passed, the producer's trigger
  is 1 s), so that the last trigger's readings are in the step's last batch;
- offsets behind: `hydro_consumer_kafka_offsets_behind_latest` from the consumer's /metrics at the end;
- CPU seconds per million readings: the consumer's process tree (driver, JVM, Python workers,
  sampled from /proc) from the end of the step's first batch to the end of its last, over the
  readings those batches read. The producer, broker and influxd run on the same cores and are not in it.

A step passes when its batches' p99 is within the trigger, its readings' p99 latency is below
trigger + 10 s, the producer sent at least 95% of the rate, and every reading of the step reached
InfluxDB within three triggers and a minute of its end. The sustainable rate of a master is the
highest step below its first failing one (a master stops at its first failing step: its backlog
would spill into the next; `--keep-going` runs the rest for a look); per core, that rate over the
master's cores.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import contextlib
import dataclasses
import gzip
import itertools
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from hydrostream_jobs import contract  # noqa: E402
from hydrostream_jobs.cli import producer_parser  # noqa: E402
from hydrostream_jobs.token import TokenSource  # noqa: E402
from latency import duration_seconds, percentile  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from infra.job_commands import JobFlags, consumer_args, producer_args  # noqa: E402
from infra.model import FRESHNESS_MARGIN_S, trigger_seconds  # noqa: E402
from infra.services.kafka import topics  # noqa: E402
from infra.settings import JobsSettings, KafkaSettings  # noqa: E402
from tests.influxdb import influxdb_build  # noqa: E402
from tests.influxdb.influxdb_server import influxdb_server  # noqa: E402
from tests.jobs.influx_fake import FakeInflux  # noqa: E402
from tests.kafka.broker import Broker, create_topics, spark_kafka_conf  # noqa: E402
from tests.ports import free_port  # noqa: E402

CONSUMER = ROOT / "jobs" / "consumer.py"
PRODUCER = ROOT / "jobs" / "producer.py"
DEFAULT_STEPS = "2000,4000,8000"
DEFAULT_STEP_SECONDS = 60
DEFAULT_MASTERS = "local[1],local[2]"
QUICK = {"steps": "1000,2000", "step_seconds": 30, "masters": "local[2]", "warmup_batches": 1}
LATENCY_ALLOWANCE_S = 10      # the target: readings in InfluxDB within trigger + 10 s (p99)
MIN_SENT_SHARE = 0.95         # below it the producer did not put the step's rate into Kafka
COMPLETE_SHARE = 0.998        # of the step's expected readings, to call it drained
PRODUCER_SETTLE_S = 5.0       # after the producer's first send: its own first batches are cold
SEND_LAG_S = 3.0              # event time -> in Kafka, at most (see the module docstring)
SAMPLE_EVERY_S = 0.5
WARMUP_TIMEOUT_S = 600
SENT = contract.PRODUCER_MESSAGES_SENT_TOTAL
_BATCH_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z INFO hydrostream_jobs\.progress: batch (\d+): "
    r"input_rows=(\d+) .* duration_s=([0-9.]+) offsets_behind=(\d+|n/a)$", re.MULTILINE)


@dataclass(frozen=True)
class Batch:
    """One committed micro-batch, from the consumer's log line."""

    batch_id: int
    end: float              # epoch seconds of the log line (the listener's, just after the commit)
    duration_s: float       # Spark's batchDuration: from the trigger to the commit
    input_rows: int
    offsets_behind: int | None

    @property
    def start(self) -> float:
        return self.end - self.duration_s


def parse_batches(log_text: str) -> list[Batch]:
    """Every `batch N:` line of the consumer's log (docs/jobs.md, "Logs"), in order."""
    batches = []
    for match in _BATCH_LINE.finditer(log_text):
        stamp, millis, batch_id, rows, duration, behind = match.groups()
        end = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000
        batches.append(Batch(int(batch_id), end, float(duration), int(rows),
                             None if behind == "n/a" else int(behind)))
    return batches


def warmed_up(batches: Sequence[Batch], least: int) -> bool:
    """At least `least` batches read data, and the last one read all there was when it started."""
    with_data = [b for b in batches if b.input_rows]
    return len(with_data) >= least and with_data[-1].offsets_behind == 0


def interpolate(samples: Sequence[tuple[float, float]], at: float) -> float:
    """The value at `at` of a series of (time, value) samples in time order, linear between two samples."""
    if not samples or not samples[0][0] <= at <= samples[-1][0]:
        raise ValueError(f"{at} is outside the samples' span")
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= at <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    return samples[-1][1]


@dataclass(frozen=True)
class Step:
    """One rate's measurements on one master."""

    master: str
    cores: int
    rate: int
    seconds: float                  # the step's length (whole triggers)
    sent_per_s: float | None        # what the producer sent in it
    batch_durations: tuple[float, ...]
    batch_rows: int                 # readings those batches read
    readings: int                   # the step's readings that reached InfluxDB
    expected_readings: int          # rate x seconds, less the producer's sensor faults (quarantined)
    latency_p50: float | None
    latency_p99: float | None
    offsets_behind: int | None
    cpu_seconds: float | None       # the consumer's process tree over the batches counted
    drained: bool                   # every reading of the step reached InfluxDB in time

    @property
    def batch_p50(self) -> float | None:
        return percentile(list(self.batch_durations), 0.50) if self.batch_durations else None

    @property
    def batch_p99(self) -> float | None:
        return percentile(list(self.batch_durations), 0.99) if self.batch_durations else None

    @property
    def cpu_per_million(self) -> float | None:
        if self.cpu_seconds is None or not self.batch_rows:
            return None
        return self.cpu_seconds * 1_000_000 / self.batch_rows


def failures(step: Step, trigger_s: float) -> list[str]:
    """Why `step` is not sustainable at the trigger; empty when it is."""
    reasons = []
    if not step.drained:
        reasons.append(f"not drained ({step.readings:,} of {step.expected_readings:,} readings)")
    if step.batch_p99 is None:
        reasons.append("no batch")
    elif step.batch_p99 > trigger_s:
        reasons.append(f"batch p99 {step.batch_p99:.1f} s > trigger {trigger_s:g} s")
    if step.latency_p99 is None:
        reasons.append("no reading")
    elif step.latency_p99 >= trigger_s + LATENCY_ALLOWANCE_S:
        reasons.append(f"latency p99 {step.latency_p99:.1f} s >= {trigger_s + LATENCY_ALLOWANCE_S:g} s")
    if step.sent_per_s is None or step.sent_per_s < MIN_SENT_SHARE * step.rate:
        sent = "nothing" if step.sent_per_s is None else f"{step.sent_per_s:,.0f}/s"
        reasons.append(f"producer sent {sent}")
    return reasons


def sustainable_rate(steps: Sequence[Step], trigger_s: float) -> int | None:
    """The highest rate of one master's steps below its lowest failing one; None if the lowest fails."""
    best = None
    for step in sorted(steps, key=lambda s: s.rate):
        if failures(step, trigger_s):
            break
        best = step.rate
    return best


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


TABLE_HEADER = ("master", "rate/s", "sent/s", "batches", "batch p50", "batch p99", "latency p50",
                "latency p99", "behind", "CPU s/M", "verdict")


def table(steps: Sequence[Step], trigger_s: float) -> str:
    """The steps as a Markdown table, then each master's sustainable rate and its rate per core."""
    rows = [TABLE_HEADER, tuple("---" if i == 0 or i == len(TABLE_HEADER) - 1 else "---:"
                                for i in range(len(TABLE_HEADER)))]
    for s in steps:
        reasons = failures(s, trigger_s)
        rows.append((s.master, f"{s.rate:,}", _number(s.sent_per_s), str(len(s.batch_durations)),
                     _seconds(s.batch_p50), _seconds(s.batch_p99), _seconds(s.latency_p50),
                     _seconds(s.latency_p99), _number(s.offsets_behind), _number(s.cpu_per_million, 1),
                     "; ".join(reasons) if reasons else "sustained"))
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    for master in dict.fromkeys(s.master for s in steps):
        mine = [s for s in steps if s.master == master]
        rate = sustainable_rate(mine, trigger_s)
        if rate is None:
            lines.append(f"{master}: no step sustained")
        else:
            lines.append(f"{master}: sustainable {rate:,} readings/s, {rate // mine[0].cores:,} per core")
    return "\n".join(lines)


def cores_of(master: str) -> int:
    """local[N] -> N (the benchmark runs local masters only)."""
    match = re.fullmatch(r"local\[(\d+)\]", master)
    if match is None or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{master!r}: a local master, local[N]")
    return int(match.group(1))


def positive_ints(text: str) -> list[int]:
    """'1000,2000' -> [1000, 2000], ascending, each positive."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated whole numbers") from None
    if any(v <= 0 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: positive, ascending, no repeats")
    return values


@dataclass
class TimedProxy(FakeInflux):
    """The jobs suite's forwarding proxy in front of influxd, noting when each reading line was accepted."""

    event_ns: array = field(default_factory=lambda: array("q"))
    accepted_at: array = field(default_factory=lambda: array("d"))

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str | None]:
        status, message, retry_after = super()._forward(path, headers, body)
        if 200 <= status < 300:
            accepted = time.time()
            text = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
            stamps = [int(line[line.rindex(b" ") + 1:]) for line in text.split(b"\n")
                      if line.startswith(b"sensor_readings,")]
            with self._lock:
                self.event_ns.extend(stamps)
                self.accepted_at.extend([accepted] * len(stamps))
        return status, message, retry_after

    def _since(self, start: float) -> list[tuple[int, float]]:
        """(event ns, accepted at) of the lines accepted since shortly before `start` (a line is accepted
        after its event time; the slack covers threads that appended out of order)."""
        with self._lock:
            first = bisect.bisect_left(self.accepted_at, start - 5.0)
            return list(zip(self.event_ns[first:], self.accepted_at[first:], strict=True))

    def delays(self, start: float, end: float) -> list[float]:
        """Accepted time less event time of the readings whose event time is in [start, end)."""
        low, high = int(start * 1e9), int(end * 1e9)
        return [accepted - stamp / 1e9 for stamp, accepted in self._since(start) if low <= stamp < high]

    def count(self, start: float, end: float) -> int:
        """Readings accepted so far whose event time is in [start, end)."""
        low, high = int(start * 1e9), int(end * 1e9)
        return sum(1 for stamp, _accepted in self._since(start) if low <= stamp < high)


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and its descendants, the reaped ones' included (cutime, cstime)."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    tree, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


class CpuSampler(threading.Thread):
    """Samples a process tree's CPU seconds every SAMPLE_EVERY_S: (time, seconds) pairs."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), _tree_cpu_seconds(self.root)))
            self.done.wait(SAMPLE_EVERY_S)

    def between(self, start: float, end: float) -> float | None:
        """CPU seconds from `start` to `end`, None when the samples do not span them."""
        samples = list(self.samples)
        try:
            return interpolate(samples, end) - interpolate(samples, start)
        except ValueError:
            return None


@dataclass
class Job:
    """A job's command line in its own process group, its output in `log`, its metrics on `port`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def check(self) -> None:
        """Fail the benchmark when the job has ended (it never ends on its own)."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the group (Python, its JVM), SIGKILL if it is not gone within a minute."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def metric(self, name: str) -> float | None:
        """The sum of a metric's samples on the job's endpoint; None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        values = [sample.value for family in text_string_to_metric_families(text)
                  for sample in family.samples if sample.name == name]
        return sum(values) if values else None

    def batches(self) -> list[Batch]:
        return parse_batches(self.log.read_text(errors="replace"))


def wait_for(what: str, condition: Callable[[], object], deadline: float, jobs: Sequence[Job]):
    """Poll `condition` until it returns something truthy, returned; fail past `deadline` or if a job ends."""
    while True:
        for job in jobs:
            job.check()
        found = condition()
        if found:
            return found
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(SAMPLE_EVERY_S)


def job_env() -> dict[str, str]:
    """A user's environment with the connector on the classpath; Spark's UI off (no port below 10000)."""
    submit = [*spark_kafka_conf(), "--conf", "spark.ui.enabled=false", "pyspark-shell"]
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_SUBMIT_ARGS": " ".join(submit)}


@dataclass(frozen=True)
class Plan:
    """What every master runs: the stacks' job flags and the benchmark's steps."""

    jobs: JobsSettings
    trigger: str
    read_cap: int
    steps: list[int]
    step_seconds: float
    warmup_batches: int
    producer_master: str
    fault_share: float
    keep_going: bool = False        # past a failing step (its backlog spills into the next)

    @property
    def trigger_s(self) -> float:
        return duration_seconds(self.trigger)

    def flags(self, rate: int) -> JobFlags:
        j = self.jobs
        return JobFlags(rate=rate, farms=j.farms, devices_per_farm=j.devices_per_farm, trigger=self.trigger,
                        window=j.window, slide=j.slide, watermark=j.watermark, read_cap=self.read_cap,
                        freshness_objective=f"{trigger_seconds(self.trigger) + FRESHNESS_MARGIN_S}s")


def run_master(plan: Plan, master: str, index: int, broker: Broker, proxy: TimedProxy, token: str,
               work: Path) -> Iterator[Step]:
    """One consumer on `master` through every step (until one fails); yields each step as it ends."""
    topic = f"{contract.READINGS_TOPIC}.{index}"
    readings = next(t for t in topics(KafkaSettings()) if t.name == contract.READINGS_TOPIC)
    create_topics(broker, dataclasses.replace(readings, name=topic))
    root = work / f"master-{index}"
    (root / "releases").mkdir(parents=True)
    (root / "token").write_text(token)
    env = job_env()
    port = free_port()
    stack_args = consumer_args(
        plan.flags(plan.steps[-1]), bootstrap_servers=broker.bootstrap_servers, influx_url=proxy.url,
        influx_org=proxy.org, influx_bucket=proxy.bucket, token=TokenSource(file=str(root / "token")),
        checkpoint_root=str(root / "releases" / "bench"), handover_root=str(root / "releases"),
        # The test broker does not authenticate (a SASL login costs a handshake per connection, not per
        # record: SASL_PLAINTEXT adds nothing to the records' path).
        kafka_login=None)
    # The stacks' arguments, then the benchmark's overrides (argparse keeps an option's last value).
    consumer = Job("consumer", [sys.executable, str(CONSUMER), *stack_args, "--topic", topic,
                                "--master", master, "--metrics-port", str(port)],
                   env, root / "consumer.log", port)
    producer: Job | None = None
    sampler: CpuSampler | None = None
    trigger_s, step_s = plan.trigger_s, math.ceil(plan.step_seconds / plan.trigger_s) * plan.trigger_s
    try:
        consumer.start()
        sampler = CpuSampler(consumer.process.pid)
        sampler.start()
        for number, rate in enumerate(plan.steps):
            port = free_port()
            stack_args = producer_args(plan.flags(rate), bootstrap_servers=broker.bootstrap_servers,
                                       checkpoint_root=str(root / f"producer-{rate}"), kafka_login=None)
            producer = Job(f"producer --rate {rate}", [
                sys.executable, str(PRODUCER), *stack_args, "--topic", topic,
                "--master", plan.producer_master, "--metrics-port", str(port)],
                env, root / f"producer-{rate}.log", port)
            producer.start()
            running = (consumer, producer)
            wait_for(f"{producer.name}'s first send", lambda p=producer: (p.metric(SENT) or 0) > 0,
                     time.time() + 300, running)
            ready = time.time() + PRODUCER_SETTLE_S
            if number == 0:
                try:
                    wait_for(f"{plan.warmup_batches} batches with data, the last caught up (warm-up)",
                             lambda: warmed_up(consumer.batches(), plan.warmup_batches),
                             time.time() + WARMUP_TIMEOUT_S, running)
                except TimeoutError as timeout:
                    print(f"{master}: {timeout}; measuring from here", flush=True)
                ready = max(ready, time.time())
            first = wait_for("the step's first batch", lambda r=ready: next(
                (b for b in consumer.batches() if b.start >= r), None), ready + 2 * trigger_s + 300, running)
            sent_from = (time.time(), producer.metric(SENT))
            start, end = first.start, first.start + step_s
            print(f"{time.strftime('%H:%M:%S')} {master} {rate:,}/s: step from batch {first.batch_id}, "
                  f"{step_s:g} s; {load()}", flush=True)
            wait_for("the step's end", lambda e=end: time.time() >= e, end + 60, running)
            window = (start - SEND_LAG_S, end - SEND_LAG_S)
            expected = round(rate * step_s * (1 - plan.fault_share))

            def drained(e=end, w=window, n=expected) -> Batch | None:
                last = next((b for b in consumer.batches() if b.start >= e - 1), None)
                return last if last is not None and proxy.count(*w) >= COMPLETE_SHARE * n else None

            try:
                last = wait_for("the step's readings in InfluxDB", drained, end + 3 * trigger_s + 60, running)
            except TimeoutError:
                last = None
            finish = last.end if last is not None else time.time()
            counted = [b for b in consumer.batches() if start + 1 < b.start and b.end <= finish]
            delays = proxy.delays(*window)
            behind = consumer.metric(contract.CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST)
            sent_to = (time.time(), producer.metric(SENT))
            producer.stop()
            producer = None
            sent_rate = (None if sent_from[1] is None or sent_to[1] is None
                         else (sent_to[1] - sent_from[1]) / (sent_to[0] - sent_from[0]))
            step = Step(master, cores_of(master), rate, step_s, sent_rate,
                        tuple(b.duration_s for b in counted), sum(b.input_rows for b in counted),
                        len(delays), expected,
                        percentile(delays, 0.50) if delays else None,
                        percentile(delays, 0.99) if delays else None,
                        None if behind is None else int(behind),
                        sampler.between(first.end, counted[-1].end) if counted else None,
                        last is not None)
            yield step
            if failures(step, trigger_s) and not plan.keep_going:
                return
    finally:
        if producer is not None:
            producer.stop()
        consumer.stop()
        if sampler is not None:
            sampler.done.set()


def load() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return "load " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpus": os.cpu_count(), "model": model, "memory_gb": round(memory_kb / 2**20, 1)}


def commit() -> str:
    """The working tree's commit, `+dirty` when it has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> None:
    """Start the broker, influxd and the proxy, run every master's steps, print and save the table."""
    jobs = JobsSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_ints,
                        help=f"producer rates, readings/s (default {DEFAULT_STEPS})")
    parser.add_argument("--step-seconds", type=float,
                        help=f"each step's length in seconds, rounded up to whole triggers "
                             f"(default {DEFAULT_STEP_SECONDS})")
    parser.add_argument("--masters", help=f"consumer masters, in order (default {DEFAULT_MASTERS})")
    parser.add_argument("--warmup-batches", type=int, help="batches with data before a master's first step "
                                                           "(default 2)")
    parser.add_argument("--producer-master", default="local[1]")
    parser.add_argument("--trigger", default=jobs.trigger,
                        help="the consumer's trigger (default: the stacks', JobsSettings: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a check that it runs: {QUICK['masters']}, steps {QUICK['steps']}, "
                             f"{QUICK['step_seconds']} s each, one warm-up batch")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every step, also after one failed (its backlog spills into the next: "
                             "for a look, not for the figure)")
    parser.add_argument("--json", help="also write the steps and the sustainable rates to this file")
    args = parser.parse_args(argv)
    defaults = {"steps": DEFAULT_STEPS, "step_seconds": DEFAULT_STEP_SECONDS, "masters": DEFAULT_MASTERS,
                "warmup_batches": 2, **(QUICK if args.quick else {})}
    steps = args.steps or positive_ints(str(defaults["steps"]))
    masters = (args.masters or str(defaults["masters"])).split(",")
    for master in masters:
        cores_of(master)
    plan = Plan(jobs, args.trigger, JobsSettings(rate=steps[-1], trigger=args.trigger).read_cap, steps,
                args.step_seconds or float(defaults["step_seconds"]),
                args.warmup_batches if args.warmup_batches is not None else int(defaults["warmup_batches"]),
                args.producer_master, producer_parser().get_default("fault_share"), args.keep_going)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    command = shlex.join([".venv/bin/python", "benchmarks/steady_state.py", *argv])
    started, load_before = time.time(), os.getloadavg()
    print(f"{command}\n{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))}, commit {commit()}, "
          f"{machine()}, {load()}\ntrigger {plan.trigger}, steps {steps} readings/s, {plan.step_seconds:g} s "
          f"each, masters {masters}, producer on {plan.producer_master}, read cap {plan.read_cap:,}",
          flush=True)
    results: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="hydro-steady-") as folder, contextlib.ExitStack() as stack:
        work = Path(folder)
        broker = Broker(work / "broker")
        broker.workdir.mkdir()
        broker.format()
        stack.callback(broker.stop)
        broker.start()
        (work / "influxdb").mkdir()
        server = stack.enter_context(influxdb_server(influxdb_build.ensure_built(), work / "influxdb"))
        bucket = server.new_bucket()
        proxy = TimedProxy(token=bucket.token, org=bucket.org, bucket=bucket.bucket, upstream=bucket.url,
                           strict=False, port=free_port())
        proxy.start()
        stack.callback(proxy.stop)
        for index, master in enumerate(masters):
            for step in run_master(plan, master, index, broker, proxy, bucket.token, work):
                results.append(step)
                print(table([step], plan.trigger_s).splitlines()[2], flush=True)
    print(f"\n{table(results, plan.trigger_s)}\n\nload average before {load_before}, "
          f"after {os.getloadavg()}; {time.time() - started:.0f} s in all", flush=True)
    if args.json:
        per_master = {m: sustainable_rate([s for s in results if s.master == m], plan.trigger_s)
                      for m in masters}
        document = {
            "command": command, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started), "commit": commit(), "machine": machine(),
            "load_before": load_before, "load_after": os.getloadavg(), "trigger": plan.trigger,
            "read_cap": plan.read_cap, "producer_master": plan.producer_master,
            "steps": [dataclasses.asdict(s) | {"batch_p50": s.batch_p50, "batch_p99": s.batch_p99,
                                               "cpu_per_million": s.cpu_per_million,
                                               "failures": failures(s, plan.trigger_s)} for s in results],
            "sustainable": {m: {"rate": r, "per_core": None if r is None else r // cores_of(m)}
                            for m, r in per_master.items()},
        }
        Path(args.json).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
