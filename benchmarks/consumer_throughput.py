"""Consumer throughput: noop sink vs the InfluxDB sink vs the seeds' collect()-and-Point approach.

    .venv/bin/python benchmarks/consumer_throughput.py --readings 1000000
    .venv/bin/python benchmarks/consumer_throughput.py --modes influxdb,seeds,parse_floor --warm-up

Generates the readings once with the producer's simulation, then runs each mode in a fresh
process (fresh JVM, so peak memory is per mode) against a local endpoint speaking the InfluxDB v2
write API, and prints records/s, CPU seconds (driver, JVM and Python workers: the cores are shared
with other work, so wall time alone is noisy), peak memory and the ratios the issue targets.
`parse_floor` is not a consumer: it only reads the files and parses them with from_json into a noop
sink, the part every Spark JSON consumer (the seeds' included) pays before doing anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODES = ("noop", "influxdb", "influxdb_small_batches", "seeds", "parse_floor")


def _session(shuffle_partitions: int):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("consumer-throughput")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def generate(readings: int, output: str, files: int) -> None:
    """Write `readings` simulated messages as `files` text files (not timed)."""
    from hydrostream_jobs.producer_job import counted_ticks
    from hydrostream_jobs.simulation import Fleet, simulated_messages

    spark = _session(2)
    ticks = counted_ticks(spark, readings, 500, 1_767_225_600_000_000)
    messages = simulated_messages(ticks, Fleet(3, 20, 4, 7), fault_share=0.001, malformed_share=0.0)
    messages.select("value").repartition(files).write.text(output)
    spark.stop()


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _process_tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and all its descendants (JVM, Python workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        # utime, stime, and those of reaped children
        cpu[pid] = sum(int(value) for value in fields[11:15]) / tick
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += cpu.get(pid, 0.0)
        pending += [child for child, parent in parents.items() if parent == pid]
    return total


def _seeds_batch(df, batch_id, url, token, org, bucket):
    """The seeds' sink, reproduced: collect() the batch, one Point per row, written from the driver."""
    from hydrostream_jobs import contract
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    rows = df.collect()
    points = []
    for row in rows:
        point = Point(contract.READINGS_MEASUREMENT).tag("farm_id", row.farm_id).tag("zone", row.zone)
        point = point.tag("device_id", row.device_id)
        for name in contract.VALUE_FIELDS:
            point = point.field(name, float(getattr(row, name)))
        points.append(point.time(row.ts))
    with InfluxDBClient(url=url, token=token, org=org, timeout=600_000, enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=points)


def _consume(spark, mode: str, influx, input_path: str, work: str) -> None:
    """Consume all of `input_path` once in `mode`, with checkpoints and dead letters under `work`."""
    from functools import partial

    from hydrostream_jobs.cli import parse_consumer_args
    from hydrostream_jobs.consumer_job import run
    from hydrostream_jobs.metrics import ConsumerMetrics
    from hydrostream_jobs.schema import READING_SCHEMA
    from pyspark.sql import functions as F

    token_file = os.path.join(work, "token")
    with open(token_file, "w", encoding="utf-8") as handle:
        handle.write(influx.token)
    if mode == "parse_floor":
        query = (
            spark.readStream.format("text")
            .load(input_path)
            .select(F.from_json("value", READING_SCHEMA).alias("j"))
            .select("j.*")
            .writeStream.format("noop")
            .trigger(availableNow=True)
            .option("checkpointLocation", os.path.join(work, "floor-checkpoint"))
            .start()
        )
        query.awaitTermination()
    elif mode == "seeds":
        parsed = (
            spark.readStream.format("text")
            .load(input_path)
            .select(F.from_json("value", READING_SCHEMA).alias("j"))
            .select("j.*")
            .filter(F.col("ph").isNotNull())
        )
        writer = partial(
            _seeds_batch, url=influx.url, token=influx.token, org=influx.org, bucket=influx.bucket
        )
        query = (
            parsed.writeStream.foreachBatch(writer)
            .trigger(availableNow=True)
            .option("checkpointLocation", os.path.join(work, "seeds-checkpoint"))
            .start()
        )
        query.awaitTermination()
    else:
        sink = "noop" if mode == "noop" else "influxdb"
        argv = [
            "--source",
            "files",
            "--input-path",
            input_path,
            "--sink",
            sink,
            "--influx-url",
            influx.url,
            "--influx-org",
            influx.org,
            "--influx-bucket",
            influx.bucket,
            "--influx-token-file",
            token_file,
            "--dead-letter-path",
            os.path.join(work, "dlq"),
            "--checkpoint-location",
            os.path.join(work, "checkpoint"),
            "--metrics-port",
            "0",
        ]
        if mode == "influxdb_small_batches":
            argv += ["--max-files-per-trigger", "2"]
        run(spark, parse_consumer_args(argv), ConsumerMetrics())


def run_mode(mode: str, input_path: str, work: str, shuffle_partitions: int, warm_up: bool) -> dict:
    """Run one mode in this process (after an untimed run on the same input when `warm_up`)."""
    from tests.jobs.influx_fake import FakeInflux

    influx = FakeInflux(strict=False)
    influx.start()
    spark = _session(shuffle_partitions)
    if warm_up:
        os.makedirs(os.path.join(work, "warm-up"))
        _consume(spark, mode, influx, input_path, os.path.join(work, "warm-up"))
        influx.lines_received = 0
    cpu_before = _process_tree_cpu_seconds(os.getpid())
    started = time.perf_counter()
    _consume(spark, mode, influx, input_path, work)
    elapsed = time.perf_counter() - started
    cpu_seconds = _process_tree_cpu_seconds(os.getpid()) - cpu_before
    jvm_pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
    result = {
        "mode": mode,
        "seconds": elapsed,
        "cpu_seconds": cpu_seconds,
        "lines_received": influx.lines_received,
        "jvm_peak_rss_mb": _peak_rss_mb(jvm_pid),
        "python_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    spark.stop()
    influx.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="run each mode once untimed in the same JVM first: the steady state of a long-running job",
    )
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.input, args.work, args.shuffle_partitions, args.warm_up)))
        return
    with tempfile.TemporaryDirectory(prefix="hydro-bench-") as work:
        input_path = os.path.join(work, "input")
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {ROOT!r}); "
                f"from benchmarks.consumer_throughput import generate; "
                f"generate({args.readings}, {input_path!r}, {args.files})",
            ],
            check=True,
        )
        results = {}
        for mode in args.modes.split(","):
            mode_work = os.path.join(work, mode)
            os.makedirs(mode_work)
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--mode",
                    mode,
                    "--input",
                    input_path,
                    "--work",
                    mode_work,
                    "--shuffle-partitions",
                    str(args.shuffle_partitions),
                    *(["--warm-up"] if args.warm_up else []),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[mode]
            print(
                f"{mode:24s} {args.readings / r['seconds']:>10,.0f} records/s  {r['seconds']:7.1f} s  "
                f"CPU {r['cpu_seconds']:6.1f} s  "
                f"points received {r['lines_received']:>9,}  JVM peak RSS {r['jvm_peak_rss_mb']:6.0f} MB  "
                f"Python peak RSS {r['python_peak_rss_mb']:5.0f} MB",
                flush=True,
            )
    rate = {mode: args.readings / r["seconds"] for mode, r in results.items()}
    if "noop" in rate and "influxdb" in rate:
        print(f"(b) influxdb / (a) noop  = {rate['influxdb'] / rate['noop']:.2f}  (target >= 0.8)")
    if "seeds" in rate and "influxdb" in rate:
        print(f"(b) influxdb / (c) seeds = {rate['influxdb'] / rate['seeds']:.2f}  (target >= 5)")
        cpu = {mode: r["cpu_seconds"] for mode, r in results.items()}
        print(f"CPU seconds (c) seeds / (b) influxdb = {cpu['seeds'] / cpu['influxdb']:.2f}")


if __name__ == "__main__":
    main()
