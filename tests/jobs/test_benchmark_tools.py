"""The benchmarks' measuring tools: process-tree CPU and memory, fleet shapes, percentiles, profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from consumer_throughput import FleetShape, fleet_shape, producer_rate  # noqa: E402
from latency import duration_seconds, iso_millis, percentile  # noqa: E402
from stage_profile import profile  # noqa: E402

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
