"""End-to-end latency at a stack's configured rate: event time -> point accepted by the InfluxDB endpoint.

    .venv/bin/python benchmarks/latency.py                       # 500 readings/s, --trigger 30s, 4 min
    .venv/bin/python benchmarks/latency.py --rate 500 --seconds 240 --trigger 30s

No Kafka here: a feeder thread writes, every second, the readings of that second (event time = the
wall clock when they "happened", spread evenly over the second) as one file, renamed into the input
folder so Spark never sees half a file; `jobs/consumer.py --source files --trigger 30s` runs over
that folder as a process, as on a stack. The endpoint (the jobs suite's fake InfluxDB, timing each
accepted line) runs in this process on the same clock. Reported: readings' latency p50/p99/max
(from event time to the endpoint's 204), and each window point's first and final write behind its
window end; targets: readings p99 < trigger + 10 s, windows final within watermark + trigger.
The first batch pays the cold JVM: figures are given with and without the readings it carried.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [ROOT, BENCHMARKS]

from consumer_throughput import FleetShape, fleet_shape  # noqa: E402
from hydrostream_jobs import durations  # noqa: E402

from tests.jobs.influx_fake import FakeInflux  # noqa: E402

CONSUMER = os.path.join(ROOT, "jobs", "consumer.py")
READING_TEMPLATE = (
    '{{"farm_id":"farm-{farm:02d}","zone":"bay-{zone}","device_id":"hp-{device:04d}","ts":"{ts}",'
    '"ph":5.9,"ec_ms_cm":1.6,"water_temp_c":19.5,"air_temp_c":22.0,"humidity_pct":68.0,'
    '"light_ppfd":400.0,"dissolved_oxygen_mg_l":8.6}}'
)
def duration_seconds(text: str) -> float:
    """'30s' -> 30.0, '10m' -> 600.0 (the consumer's own flag syntax: hydrostream_jobs.durations)."""
    try:
        return durations.milliseconds(text) / 1000
    except durations.DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def iso_millis(epoch: float) -> str:
    """Epoch seconds -> '2026-12-02T01:02:03.456Z' (UTC, milliseconds)."""
    whole = int(epoch)
    millis = round((epoch - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


@dataclass
class TimedInflux(FakeInflux):
    """The fake endpoint in count-only mode, also noting when each point was accepted."""

    strict: bool = False
    reading_delays: list[tuple[int, float]] = field(default_factory=list)  # (event ns, accepted at)
    window_writes: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def _store(self, lines: list[str]) -> tuple[int, str]:
        status, message = super()._store(lines)
        accepted = time.time()
        if status == 204:
            with self._lock:
                for line in lines:
                    series, stamp = line.split(" ", 1)[0], int(line.rsplit(" ", 1)[1])
                    if series.startswith("sensor_readings,"):
                        self.reading_delays.append((stamp, accepted))
                    else:
                        self.window_writes.setdefault((series, stamp), []).append(accepted)
        return status, message


def feed(
    folder: str, fleet: FleetShape, rate: int, seconds: int, stop: threading.Event
) -> tuple[float, float]:
    """Write `rate` readings per second of wall clock for `seconds`; returns (first, last) event time."""
    per_zone, zones = fleet.devices_per_zone, fleet.zones
    seq = 0
    start = time.time()
    for second in range(seconds):
        tick = start + second + 1
        time.sleep(max(0.0, tick - time.time()))
        if stop.is_set():
            break
        lines = []
        for k in range(rate):
            device = seq % fleet.devices
            seq += 1
            farm, in_farm = divmod(device, zones * per_zone)
            lines.append(READING_TEMPLATE.format(
                farm=farm + 1, zone=in_farm % zones + 1, device=device + 1,
                ts=iso_millis(tick - 1 + k / rate)))
        temporary = os.path.join(folder, f".part-{second:06d}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.rename(temporary, os.path.join(folder, f"part-{second:06d}.json"))
    return start, start + seconds


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of `values` (share in [0, 1])."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def main(argv: list[str]) -> None:
    """Feed readings in real time, run the consumer over them, print the latency figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500,
                        help="readings per second (the stacks' producer rate)")
    parser.add_argument("--seconds", type=int, default=240, help="how long to feed")
    parser.add_argument("--trigger", default="30s")
    parser.add_argument("--watermark", default="10m")
    parser.add_argument("--fleet", type=fleet_shape, default=fleet_shape("5x4x50"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    trigger, watermark = duration_seconds(args.trigger), duration_seconds(args.watermark)
    influx = TimedInflux()
    influx.start()
    env = {key: value for key, value in os.environ.items() if key != "PYSPARK_SUBMIT_ARGS"}
    env["PYSPARK_PYTHON"] = sys.executable
    print(f"load average before: {os.getloadavg()}; rate {args.rate}/s for {args.seconds} s, "
          f"--trigger {args.trigger} --watermark {args.watermark}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hydro-latency-") as work:
        folder = os.path.join(work, "input")
        os.makedirs(folder)
        token = os.path.join(work, "token")
        with open(token, "w", encoding="utf-8") as handle:
            handle.write(influx.token)
        command = [
            sys.executable, CONSUMER, "--source", "files", "--input-path", folder, "--sink", "influxdb",
            "--influx-url", influx.url, "--influx-org", influx.org, "--influx-bucket", influx.bucket,
            "--influx-token-file", token, "--dead-letter-path", os.path.join(work, "dead"),
            "--checkpoint-location", os.path.join(work, "checkpoint"), "--trigger", args.trigger,
            "--watermark", args.watermark, "--metrics-port", "0", "--master", f"local[{args.cores}]",
        ]
        log_path = os.path.join(work, "consumer.log")
        with open(log_path, "w", encoding="utf-8") as log:
            consumer = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            stop = threading.Event()
            try:
                first, last = feed(folder, args.fleet, args.rate, args.seconds, stop)
                # Drain: the last second's readings need up to two triggers, more while the cold
                # JVM is still working through its first batches.
                deadline = time.time() + 2 * trigger + 180
                expected = args.rate * args.seconds
                while time.time() < deadline and len(influx.reading_delays) < expected:
                    if consumer.poll() is not None:
                        break
                    time.sleep(1)
            finally:
                consumer.send_signal(signal.SIGINT)
                try:
                    consumer.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    consumer.kill()
                    consumer.wait()
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            tail = handle.read()[-3000:]
    influx.stop()
    report(influx, first, last, args, trigger, watermark, tail)


def report(influx: TimedInflux, first: float, last: float, args: argparse.Namespace, trigger: int,
           watermark: int, log_tail: str) -> None:
    """Print the readings' and the windows' delays and whether the targets hold."""
    delays = [(accepted - stamp / 1e9, accepted) for stamp, accepted in influx.reading_delays]
    expected = args.rate * args.seconds
    print(f"readings accepted: {len(delays):,} of {expected:,}")
    if not delays:
        print(log_tail)
        raise SystemExit("no reading reached the endpoint")
    first_batch_done = min(accepted for _delay, accepted in delays)
    steady = [delay for (delay, _a), (stamp, _b) in zip(delays, influx.reading_delays, strict=True)
              if stamp / 1e9 > first_batch_done]
    for label, values in (("all readings", [d for d, _a in delays]),
                          ("after the first batch (warm)", steady)):
        if values:
            p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
            verdict = "met" if p99 < trigger + 10 else "NOT met"
            print(f"{label:30s} p50 {p50:6.1f} s  p99 {p99:6.1f} s  max {max(values):6.1f} s  "
                  f"(n={len(values):,}; target p99 < {trigger + 10} s: {verdict})")
    complete = {key: writes for key, writes in influx.window_writes.items() if key[1] / 1e9 <= last}
    if complete:
        first_delay = [min(w) - key[1] / 1e9 for key, w in complete.items()]
        final_delay = [max(w) - key[1] / 1e9 for key, w in complete.items()]
        verdict = "met" if max(final_delay) <= watermark + trigger else "NOT met"
        print(f"window points (window end <= last event): {len(complete):,} windows x farm x zone")
        print(f"  first write behind window end  p50 {percentile(first_delay, 0.5):6.1f} s  "
              f"max {max(first_delay):6.1f} s")
        print(f"  final write behind window end  p50 {percentile(final_delay, 0.5):6.1f} s  "
              f"p99 {percentile(final_delay, 0.99):6.1f} s  max {max(final_delay):6.1f} s  "
              f"(target <= watermark + trigger = {watermark + trigger} s: {verdict})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
