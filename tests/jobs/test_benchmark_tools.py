"""The benchmarks' measuring tools: process-tree CPU and memory, fleet shapes, percentiles, profiles, and the
steady-state benchmark's batch log reading, step verdicts, sustainable rate and table."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from consumer_throughput import FleetShape, fleet_shape, producer_rate  # noqa: E402
from latency import duration_seconds, iso_millis, percentile  # noqa: E402
from stage_profile import profile  # noqa: E402
from steady_state import (  # noqa: E402
    Batch,
    Step,
    TimedProxy,
    cores_of,
    failures,
    interpolate,
    parse_batches,
    positive_ints,
    sustainable_rate,
    table,
    warmed_up,
)

from tests.jobs.influx_fake import FakeInflux  # noqa: E402

# A driver that leaves a grandchild behind (as a PySpark driver leaves its JVM): the grandchild
# burns 3 s of CPU after the driver has exited and holds ~200 MB; the driver holds ~60 MB.
_DRIVER = textwrap.dedent("""
    import subprocess, sys
    burner = "import time\\nx = bytearray(200 * 2**20)\\nfor i in range(0, len(x), 4096): x[i] = 1\\n" \\
             "end = time.process_time() + 3.0\\nwhile time.process_time() < end: pass\\n"
    subprocess.Popen([sys.executable, "-c", burner])
    y = bytearray(60 * 2**20)
    for i in range(0, len(y), 4096): y[i] = 1
    import time; time.sleep(0.2)
""")


def test_the_cpu_of_a_grandchild_that_outlives_its_driver_is_counted(tmp_path):
    # In a process of its own: becoming a subreaper changes the process that does it.
    probe = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {os.path.join(ROOT, "benchmarks")!r})
        from process_tree import become_subreaper, run_measured
        become_subreaper()
        m = run_measured([sys.executable, "-c", {_DRIVER!r}], {{}}, {str(tmp_path / "log")!r})
        print(json.dumps(m.__dict__))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["returncode"] == 0
    assert measured["cpu_seconds"] >= 3.0  # the grandchild's 3 s, mostly after its parent was gone
    assert measured["seconds"] < 3.0  # wall time ends with the driver, not with its leftovers
    assert 60 <= measured["driver_peak_mb"] < 200


def test_fleet_shapes_and_the_producer_rate_of_one_reading_per_period():
    assert fleet_shape("5x4x50") == FleetShape(5, 4, 50)
    assert FleetShape(5, 4, 50).devices == 1000
    assert producer_rate(FleetShape(3, 4, 5), 15) == 4  # 60 devices, a reading each per 15 s
    assert producer_rate(FleetShape(5, 4, 50), 15) == 67  # 1000 / 15 = 66.7, the producer takes an int
    for bad in ("5x4", "5x0x50", "axbxc"):
        with pytest.raises(Exception, match="FARMSxZONESxDEVICES_PER_ZONE"):
            fleet_shape(bad)


def test_latency_helpers():
    assert percentile([float(v) for v in range(1, 101)], 0.99) == 99.0
    assert percentile([float(v) for v in range(1, 101)], 0.50) == 50.0
    assert percentile([7.0], 0.99) == 7.0
    assert iso_millis(1_767_225_600.1234) == "2026-01-01T00:00:00.123Z"
    assert iso_millis(1_767_225_600.9996) == "2026-01-01T00:00:01.000Z"
    assert duration_seconds("30s") == 30 and duration_seconds("10m") == 600
    with pytest.raises(Exception, match="duration"):
        duration_seconds("soon")


def test_a_stage_profile_sums_task_times_per_stage_and_batch_phases():
    events = [
        {"Event": "SparkListenerTaskEnd", "Stage ID": 3,
         "Task Metrics": {"Executor Run Time": 700, "Executor CPU Time": 500_000_000}},
        {"Event": "SparkListenerTaskEnd", "Stage ID": 3,
         "Task Metrics": {"Executor Run Time": 300, "Executor CPU Time": 200_000_000}},
        {"Event": "SparkListenerStageCompleted", "Stage Info": {
            "Stage ID": 3, "Stage Name": "fold at sink.py:191", "Number of Tasks": 2,
            "Submission Time": 1000, "Completion Time": 1800}},
        {"Event": "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent",
         "progress": {"durationMs": {"addBatch": 1200, "queryPlanning": 50}}},
        {"Event": "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent",
         "progress": {"durationMs": {"addBatch": 800}}},
    ]
    stages, phases = profile(json.dumps(e) for e in events)
    assert stages == [{"id": 3, "name": "fold at sink.py:191", "tasks": 2, "wall_ms": 800,
                       "task_ms": 1000, "cpu_ms": 700}]
    assert phases == {"addBatch": 2000, "queryPlanning": 50}


def test_the_ratios_printed_are_the_issues_targets(capsys):
    from consumer_throughput import Result, report_ratios

    def result(mode: str, seconds: float, cpu: float = 10.0, driver: float = 40.0) -> Result:
        return Result("f", mode, 2, 1_000_000, seconds, cpu, driver, 1000.0, 0)

    report_ratios({
        "floor": result("floor", 10), "noop": result("noop", 20), "influxdb": result("influxdb", 25),
        "seeds": result("seeds", 50, cpu=30.0, driver=2000.0), "influxdb@1": result("influxdb@1", 40),
        "seeds@1": result("seeds@1", 55), "influxdb/10": result("influxdb/10", 5, driver=38.0),
        "seeds/10": result("seeds/10", 8, driver=250.0),
    })
    out = capsys.readouterr().out
    assert "influxdb / noop                               0.80  (target >= 0.85: NOT met)" in out
    assert "influxdb / seeds (wall time)                  2.00  (target >= 3.0: NOT met)" in out
    assert "influxdb / parse-only floor                   0.40  (target >= 0.4: met)" in out
    assert "influxdb local[2] / local[1]                  1.60  (target >= 1.7: NOT met)" in out
    assert "CPU seconds seeds / influxdb                  3.00" in out
    assert "influxdb driver peak, 10x batch / 1x          1.05" in out
    assert "seeds driver peak, 10x batch / 1x             8.00" in out


def _step(rate: int, batch: float = 5.0, latency: float = 33.0, sent: float | None = None,
          drained: bool = True, master: str = "local[2]") -> Step:
    """A step of 60 s at `rate` whose two batches took batch - 1 and `batch` s, 30 CPU s in all."""
    return Step(master, int(master[6:-1]), rate, 60.0, rate if sent is None else sent, (batch - 1, batch),
                rate * 60, rate * 60, rate * 60, latency - 10, latency, 0, 30.0, drained)


def test_the_consumers_batch_lines_are_read_with_their_start_end_and_lag():
    log = (
        "2026-12-07T14:21:33.100Z INFO hydrostream_jobs.progress: batch 0: input_rows=1500 valid=1444 "
        "quarantined=56 late_dropped=0 points_written=1500 duration_s=32.37 offsets_behind=n/a\n"
        "26/12/07 14:21:34 WARN ProcessingTimeExecutor: Current batch is falling behind.\n"
        "2026-12-07T14:21:39.863Z INFO hydrostream_jobs.progress: summary (finished): batches=2 "
        "input_rows=3000 valid=2898 quarantined=102 late_dropped=0 points_written=3010 batch_s=39.37 "
        "wall_s=46.20 offsets_behind=0\n"
        "2026-12-07T14:21:40.000Z INFO hydrostream_jobs.progress: batch 1: input_rows=120000 valid=119880 "
        "quarantined=120 late_dropped=3 points_written=120012 duration_s=7.00 offsets_behind=11494\n"
    )
    first, second = parse_batches(log)
    assert (first.batch_id, first.input_rows, first.duration_s) == (0, 1500, 32.37)
    assert first.offsets_behind is None
    assert first.end == 1_796_653_293.1  # 2026-12-07T14:21:33.100Z, UTC
    assert abs(first.start - (1_796_653_293.1 - 32.37)) < 1e-6
    assert (second.batch_id, second.input_rows, second.offsets_behind) == (1, 120_000, 11_494)
    assert abs(second.start - 1_796_653_293.0) < 1e-6


def test_cpu_between_two_instants_is_interpolated_from_the_samples():
    samples = [(10.0, 100.0), (11.0, 102.0), (13.0, 102.0)]
    assert interpolate(samples, 10.5) == 101.0
    assert interpolate(samples, 12.0) == 102.0
    assert interpolate(samples, 13.0) == 102.0
    with pytest.raises(ValueError, match="outside"):
        interpolate(samples, 13.5)


def test_a_step_fails_on_each_of_the_issues_conditions_and_says_which():
    assert failures(_step(2000), 30.0) == []
    assert failures(_step(2000, batch=30.0), 30.0) == []  # within the trigger, bounds included
    assert failures(_step(2000, batch=30.5), 30.0) == ["batch p99 30.5 s > trigger 30 s"]
    assert failures(_step(2000, latency=39.9), 30.0) == []
    assert failures(_step(2000, latency=40.0), 30.0) == ["latency p99 40.0 s >= 40 s"]
    assert failures(_step(2000, sent=1899), 30.0) == ["producer sent 1,899/s"]  # under 95% of 2,000
    assert failures(_step(2000, sent=1900), 30.0) == []
    assert failures(_step(2000, drained=False), 30.0) == ["not drained (120,000 of 120,000 readings)"]


def test_the_sustainable_rate_is_the_highest_step_below_the_first_failing_one():
    assert sustainable_rate([_step(1000), _step(2000), _step(4000, latency=45.0)], 30.0) == 2000
    # A step that passes above a failing one does not count: the capacity ended at the failure.
    assert sustainable_rate([_step(4000), _step(1000), _step(2000, batch=31.0)], 30.0) == 1000
    assert sustainable_rate([_step(1000, drained=False), _step(2000)], 30.0) is None
    assert sustainable_rate([_step(1000), _step(8000)], 30.0) == 8000


def test_the_table_shows_each_step_its_verdict_and_the_rate_per_core():
    steps = [_step(2000, master="local[1]"), _step(4000, latency=41.25, master="local[1]"),
             _step(2000), _step(4000), _step(8000)]
    lines = table(steps, 30.0).splitlines()
    assert lines[0].split(" | ")[1:3] == ["rate/s", "sent/s"]
    assert lines[2] == ("| local[1] | 2,000 | 2,000 | 2 | 4.0 s | 5.0 s | 23.0 s | 33.0 s | 0 | 250.0 | "
                        "sustained |")  # 30 CPU s over 120,000 readings = 250 s per million
    assert lines[3].endswith("| latency p99 41.2 s >= 40 s |")
    assert lines[-2:] == ["local[1]: sustainable 2,000 readings/s, 2,000 per core",
                          "local[2]: sustainable 8,000 readings/s, 4,000 per core"]


def test_step_lists_and_masters_are_checked():
    assert positive_ints("1000,2000,4000") == [1000, 2000, 4000]
    assert cores_of("local[2]") == 2
    for bad in ("2000,1000", "1000,1000", "0,1000", "1k"):
        with pytest.raises(Exception, match=r"ascending|whole numbers"):
            positive_ints(bad)
    for bad in ("local[*]", "yarn", "local[0]"):
        with pytest.raises(Exception, match="local"):
            cores_of(bad)


def test_a_master_is_warm_after_enough_batches_with_data_the_last_caught_up():
    empty, cold, behind, caught_up = (Batch(0, 100.0, 90.0, 0, 0), Batch(1, 200.0, 99.0, 30_000, 0),
                                      Batch(2, 260.0, 60.0, 120_000, 4_000), Batch(3, 290.0, 9.0, 34_000, 0))
    assert not warmed_up([empty, cold], 2)  # an empty batch is no warm-up
    assert not warmed_up([empty, cold, behind], 2)  # the read cap left a backlog
    assert warmed_up([empty, cold, behind, caught_up], 2)
    assert warmed_up([empty, cold], 1)


def test_the_timing_proxy_times_reading_lines_only_by_their_event_time(monkeypatch):
    answers = iter([(204, "", None), (503, "busy", "1")])
    monkeypatch.setattr(FakeInflux, "_forward", lambda self, path, headers, body: next(answers))
    now = time.time()
    stamp = int((now - 2.5) * 1e9)  # 2.5 s before it is accepted
    body = (f"sensor_readings,farm_id=a,zone=b,device_id=c ph=5.9 {stamp}\n"
            f"sensor_window_stats,farm_id=a,zone=b ph_mean=5.9 {stamp}\n"
            f"sensor_readings,farm_id=a,zone=b,device_id=d ph=6.1 {stamp - 10**10}\n").encode()
    proxy = TimedProxy(strict=False, upstream="http://127.0.0.1:9")
    for _ in range(2):  # the second write is refused: its lines are not timed
        proxy._forward("/api/v2/write", {"Content-Encoding": "gzip"}, gzip.compress(body))
    assert proxy.count(now - 5, now) == 1  # the window point and the reading 10 s earlier are outside
    assert proxy.count(now - 15, now) == 2
    (delay,) = proxy.delays(now - 5, now)
    assert 2.5 <= delay < 3.5
