"""Kafka path throughput: producer into a real broker, consumer from Kafka vs from files, side by side.

    .venv/bin/python benchmarks/kafka_throughput.py --readings 200000

Starts the test suite's KRaft broker (tests/kafka/broker.py: the catalog's Kafka version from
Maven Central), creates the topic with the stacks' topic script, and runs every step through the
jobs' real command lines, each a fresh process with the catalog's connector (spark.jars.packages,
Ivy cache kept): `producer.py --sink kafka --count N`, then `consumer.py --source kafka` with
`--sink noop` and `--sink influxdb`, and the same consumer `--source files` over the same N messages
written by `producer.py --sink files`. One micro-batch each (available-now, maxOffsetsPerTrigger N),
so the ratios compare sources, not batch counts. Times are wall times of whole command lines (JVM
start and connector resolution included, alike for every row); the machine's load is printed with
them because its cores are shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.services.kafka import TopicSpec  # noqa: E402
from tests.jobs.influx_fake import FakeInflux  # noqa: E402
from tests.kafka.broker import Broker, create_topics  # noqa: E402
from tests.kafka.pipeline import command, job_env  # noqa: E402

TOPIC = "hydro.bench"
PARTITIONS = 2
FLEET = ("--farms", "3", "--devices-per-farm", "20", "--seed", "7", "--rate", "500",
         "--malformed-share", "0", "--fault-share", "0.001", "--metrics-port", "0")


def timed(entry: str, *args: str) -> float:
    """Wall seconds of one command line; fails loudly with its stderr."""
    started = time.perf_counter()
    done = subprocess.run(command(entry, *args), env=job_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{entry} {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return elapsed


def consume(source: list[str], sink: str, influx: FakeInflux, work: Path) -> float:
    """One available-now consumer run over everything the source holds."""
    token = work / "token"
    token.write_text(influx.token)
    sinks = {"noop": ["--sink", "noop"],
             "influxdb": ["--sink", "influxdb", "--influx-url", influx.url, "--influx-org", influx.org,
                          "--influx-bucket", influx.bucket, "--influx-token-file", str(token)]}
    return timed("consumer.py", *source, *sinks[sink], "--trigger", "available-now",
                 "--dead-letter-path", str(work / "dlq"), "--checkpoint-location", str(work / "checkpoint"),
                 "--metrics-port", "0")


def load() -> str:
    """The 1-, 5- and 15-minute load averages and the core count."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def main() -> None:
    """Run the producer and the four consumer runs, print records/s and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    args = parser.parse_args()
    n = args.readings
    with tempfile.TemporaryDirectory(prefix="hydro-kafka-bench-") as folder:
        work = Path(folder)
        broker = Broker(work / "broker")
        broker.workdir.mkdir()
        broker.format()
        broker.start()
        influx = FakeInflux(strict=False)
        influx.start()
        try:
            create_topics(broker, TopicSpec(TOPIC, PARTITIONS, 3_600_000))
            kafka = ["--source", "kafka", "--bootstrap-servers", broker.bootstrap_servers, "--topic", TOPIC,
                     "--max-offsets-per-trigger", str(n)]
            files = ["--source", "files", "--input-path", str(work / "input")]
            print(f"{n:,} readings, {PARTITIONS} partitions; {load()}", flush=True)
            seconds = {"producer kafka": timed("producer.py", "--sink", "kafka", "--bootstrap-servers",
                                               broker.bootstrap_servers, "--topic", TOPIC, "--count", str(n),
                                               *FLEET)}
            print(f"{'producer --sink kafka':34s} {n / seconds['producer kafka']:>9,.0f} messages/s "
                  f"{seconds['producer kafka']:6.1f} s  {load()}", flush=True)
            timed("producer.py", "--sink", "files", "--output-path", str(work / "input"), "--count", str(n),
                  *FLEET)
            for source_name, source in (("kafka", kafka), ("files", files)):
                for sink in ("noop", "influxdb"):
                    run_work = work / f"{source_name}-{sink}"
                    run_work.mkdir()
                    key = f"{source_name} {sink}"
                    seconds[key] = consume(source, sink, influx, run_work)
                    print(f"{'consumer --source ' + source_name + ' --sink ' + sink:34s} "
                          f"{n / seconds[key]:>9,.0f} records/s  {seconds[key]:6.1f} s  {load()}", flush=True)
        finally:
            influx.stop()
            broker.stop()
    for sink in ("noop", "influxdb"):
        ratio = seconds[f"files {sink}"] / seconds[f"kafka {sink}"]
        print(f"kafka / files throughput, --sink {sink}: {ratio:.2f}  (target >= 0.75)")


if __name__ == "__main__":
    main()
