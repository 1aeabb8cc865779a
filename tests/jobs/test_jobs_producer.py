"""What the producer logs while it runs: its write tasks over a job group's life, its rate, its total."""

from __future__ import annotations

import logging

from hydrostream_jobs import producer_job
from hydrostream_jobs.cli import parse_producer_args
from hydrostream_jobs.producer_job import GroupTasks, StreamSendLog, TaskCounts
from pyspark.status import SparkJobInfo, SparkStageInfo


class FakeTracker:
    """Spark's status tracker over a dict of jobs: job id -> (status, [(stage id, tasks, done, failed)])."""

    def __init__(self, jobs: dict[int, tuple[str, list[tuple[int, int, int, int]]]]):
        self.jobs = jobs
        self.job_info_calls: list[int] = []

    def getJobIdsForGroup(self, group: str) -> list[int]:
        assert group == "g"
        return list(self.jobs)

    def getJobInfo(self, job: int) -> SparkJobInfo | None:
        self.job_info_calls.append(job)
        status, stages = self.jobs[job]
        return SparkJobInfo(job, [stage[0] for stage in stages], status)

    def getStageInfo(self, stage_id: int) -> SparkStageInfo | None:
        for _status, stages in self.jobs.values():
            for stage, tasks, done, failed in stages:
                if stage == stage_id:
                    return SparkStageInfo(stage, 0, "write", tasks, tasks - done, done, failed)
        return None


def test_group_tasks_keep_the_counts_of_jobs_spark_has_forgotten():
    tracker = FakeTracker({
        0: ("SUCCEEDED", [(0, 2, 2, 1)]),
        1: ("SUCCEEDED", [(1, 2, 2, 0)]),
        2: ("RUNNING", [(2, 2, 0, 0)]),
    })
    tasks = GroupTasks(tracker, "g")
    assert tasks.sample() == TaskCounts(done=4, total=6, failed_attempts=1)
    # Job 0 leaves the tracker (retainedJobs), job 2 ends after two failed attempts, job 3 starts.
    del tracker.jobs[0]
    tracker.jobs[2] = ("SUCCEEDED", [(2, 2, 2, 2)])
    tracker.jobs[3] = ("RUNNING", [(3, 2, 1, 0)])
    tracker.job_info_calls.clear()
    assert tasks.sample() == TaskCounts(done=7, total=8, failed_attempts=3)
    assert tracker.job_info_calls == [2, 3]  # settled jobs are not asked about again
    # Job 4 ends while job 3 still runs; job 3 ends later with one failed attempt.
    tracker.jobs[4] = ("SUCCEEDED", [(4, 1, 1, 0)])
    assert tasks.sample() == TaskCounts(done=8, total=9, failed_attempts=3)
    tracker.jobs[3] = ("SUCCEEDED", [(3, 2, 2, 1)])
    assert tasks.sample() == TaskCounts(done=9, total=9, failed_attempts=4)


class FakeMetrics:
    def __init__(self, sent: list[int]):
        self._sent = iter(sent)

    def sent(self) -> int:
        return next(self._sent)


class FakeTasks:
    def sample(self) -> TaskCounts:
        return TaskCounts(done=30, total=30, failed_attempts=2)


def test_an_endless_producer_logs_its_rate_since_the_last_line_and_its_total(monkeypatch, caplog):
    clock = iter([100.0, 110.0, 120.0, 125.0])
    monkeypatch.setattr(producer_job.time, "monotonic", lambda: next(clock))
    args = parse_producer_args(["--sink", "kafka", "--bootstrap-servers", "h:9092", "--rate", "500"])
    send_log = StreamSendLog(FakeMetrics([4000, 9000, 11000]), FakeTasks(), args)  # started at 100 s
    with caplog.at_level(logging.INFO, logger="hydrostream_jobs"):
        send_log.progress()  # 110 s: 4000 in 10 s
        send_log.progress()  # 120 s: 5000 more in 10 s
        send_log.final("stopped")  # 125 s: 11000 in 25 s
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "progress: sent=4000 rate=400.0/s (--rate 500) failed_task_attempts=2 elapsed_s=10",
        "progress: sent=9000 rate=500.0/s (--rate 500) failed_task_attempts=2 elapsed_s=20",
        "stopped: sent 11000 readings to topic hydro.readings on h:9092 in 25.0 s (440.0/s), "
        "failed_task_attempts=2",
    ]
