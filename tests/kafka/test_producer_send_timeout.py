"""The producer's send timeout without a broker: a stalled streaming query and a stalled batch write fail."""

from __future__ import annotations

import time

import pytest
from hydrostream_jobs.producer_job import ProducerStalled, await_progress, run_watched

from tests.jobs.conftest import spark  # noqa: F401  (the jobs suite's session-wide SparkSession)


class FakeQuery:
    """A StreamingQuery whose progress is scripted: one entry of `batches` per poll."""

    def __init__(self, batches: list[int | None], ends_after: int | None = None):
        self.batches, self.polls, self.ends_after, self.stopped = batches, 0, ends_after, False

    def awaitTermination(self, timeout: float) -> bool:
        self.polls += 1
        if self.polls > 200:
            raise AssertionError("the query was never stopped")
        return self.ends_after is not None and self.polls > self.ends_after

    @property
    def lastProgress(self):
        batch = self.batches[min(self.polls, len(self.batches)) - 1]
        return None if batch is None else {"batchId": batch}

    def stop(self) -> None:
        self.stopped = True


class Clock:
    """One second per poll."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_streaming_producer_whose_batches_stop_completing_is_stopped_and_fails():
    # Batches 0..3 complete, then none for longer than the timeout (10 s of polls).
    query = FakeQuery([None, 0, 1, 2, 3] + [3] * 30)
    with pytest.raises(ProducerStalled, match="stalled for good"):
        await_progress(query, 10, "stalled for good", poll_s=0, clock=Clock())
    assert query.stopped
    # The batch id stood at 3 from poll 5 on: it fails on the first poll more than 10 s after that.
    assert 15 <= query.polls <= 17


def test_a_streaming_producer_that_keeps_completing_batches_is_left_alone():
    query = FakeQuery(list(range(40)), ends_after=40)
    await_progress(query, 3, "unused", poll_s=0, clock=Clock())
    assert not query.stopped
    # No first batch at all (a producer id never granted) is a stall too.
    never = FakeQuery([None] * 30)
    with pytest.raises(ProducerStalled):
        await_progress(never, 5, "no first batch", poll_s=0, clock=Clock())


@pytest.mark.spark
def test_a_write_whose_tasks_never_complete_is_cancelled_and_fails_loudly(spark):  # noqa: F811
    def stuck() -> None:  # as Spark's Kafka writer blocked in flush(): tasks that never end
        spark.sparkContext.parallelize(range(2), 2).foreach(lambda _: time.sleep(600))

    started = time.monotonic()
    with pytest.raises(ProducerStalled, match="nothing acknowledged"):
        run_watched(spark, stuck, 3, "nothing acknowledged", poll_s=0.2)
    assert time.monotonic() - started < 60
    # The session is usable afterwards, and a write that completes is not cancelled.
    def slow_but_moving() -> None:  # each task takes 1 s, well inside the timeout
        spark.sparkContext.parallelize(range(4), 4).foreach(lambda _: time.sleep(1))

    run_watched(spark, slow_but_moving, 15, "unused", poll_s=0.2)
    assert spark.sparkContext.parallelize(range(3)).count() == 3
