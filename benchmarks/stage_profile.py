"""Where a Spark application's time went, from its event log: per stage and per micro-batch phase.

    python benchmarks/stage_profile.py EVENT_LOG_FILE

Stages are named by their call site (`fold at sink.py:...`, `collect at ...`), so a consumer's
stages map onto its code. Micro-batch phases are the query progress `durationMs` (addBatch is the
foreachBatch body; queryPlanning, getBatch, walCommit the engine's own work).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

_PROGRESS = "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent"


def profile(lines) -> tuple[list[dict], dict[str, int]]:
    """Event-log lines -> (stages with wall and task times, summed micro-batch durationMs)."""
    run_ms: dict[int, int] = defaultdict(int)
    cpu_ns: dict[int, int] = defaultdict(int)
    stages, phases = [], defaultdict(int)
    for line in lines:
        event = json.loads(line)
        kind = event.get("Event")
        if kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            run_ms[event["Stage ID"]] += metrics.get("Executor Run Time", 0)
            cpu_ns[event["Stage ID"]] += metrics.get("Executor CPU Time", 0)
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            stages.append({
                "id": info["Stage ID"], "name": info["Stage Name"], "tasks": info["Number of Tasks"],
                "wall_ms": info.get("Completion Time", 0) - info.get("Submission Time", 0),
            })
        elif kind == _PROGRESS:
            for phase, ms in event["progress"].get("durationMs", {}).items():
                phases[phase] += ms
    for stage in stages:
        stage["task_ms"] = run_ms[stage["id"]]
        stage["cpu_ms"] = cpu_ns[stage["id"]] // 1_000_000
    return stages, dict(phases)


def print_profile(path: str) -> None:
    """Print the stages grouped by name and the micro-batch phases of one event log."""
    with open(path, encoding="utf-8") as handle:
        stages, phases = profile(handle)
    grouped: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for stage in stages:
        row = grouped[stage["name"]]
        for index, key in enumerate(("wall_ms", "task_ms", "cpu_ms", "tasks")):
            row[index] += stage[key]
        row[4] += 1
    header = ("stage (call site)", "stages", "tasks", "wall s", "task s", "cpu s")
    print("    {:44s} {:>6s} {:>6s} {:>7s} {:>7s} {:>6s}".format(*header))
    for name, (wall, task, cpu, tasks, count) in sorted(grouped.items(), key=lambda kv: -kv[1][0]):
        seconds = f"{wall / 1000:7.1f} {task / 1000:7.1f} {cpu / 1000:6.1f}"
        print(f"    {name[:44]:44s} {count:6d} {tasks:6d} {seconds}")
    if phases:
        spent = ", ".join(f"{phase} {ms / 1000:.1f} s" for phase, ms in sorted(phases.items()))
        print(f"    micro-batch durationMs: {spent}")


if __name__ == "__main__":
    print_profile(sys.argv[1])
