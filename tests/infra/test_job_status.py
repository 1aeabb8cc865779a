"""The post-deploy job check: Dataproc states read right, bounded waiting, failures that say where to look."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from infra.tools import job_status
from infra.tools.job_status import CommandResult, JobsNotRunning, parse_job, wait_for_jobs

RECORDED = Path(__file__).parent / "dataproc_jobs"
IDS = {"consumer": "hydro-consumer-e6a4af49d96a07ab-1a2b3c4d",
       "producer": "hydro-producer-e6a4af49d96a07ab-5e6f7a8b"}
COMMITS = ("gs://hydrostream-dev-checkpoints/e6a4af49d96a07abb9e428f9aa08673a90d2dddc15ce70b0911cd9389b073245"
           "/consumer/consumer/commits/")
DRIVER_OUTPUT = ("gs://hydrostream-dev-dataproc-staging/google-cloud-dataproc-metainfo/"
                 "0f6c3f0e-5b8e-4f57-9a61-2f1d6a1c9e42/jobs/hydro-consumer-e6a4af49d96a07ab-1a2b3c4d/driveroutput")
NO_OBJECTS = CommandResult(1, "", "ERROR: (gcloud.storage.ls) One or more URLs matched no objects.\n")


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


def with_state(document: dict, state: str, yarn: str | None = None) -> dict:
    changed = {**document, "status": {**document["status"], "state": state}}
    if yarn is not None:
        changed["yarnApplications"] = [{**document["yarnApplications"][0], "state": yarn}]
    return changed


class FakeCloud:
    """Scripted gcloud: the n-th describe of a job returns its n-th document (the last one repeats)."""

    def __init__(self, consumer: list, producer: list, listings: list[CommandResult]):
        self.documents = {IDS["consumer"]: consumer, IDS["producer"]: producer}
        self.listings = listings
        self.calls: list[list[str]] = []
        self.seen: dict[str, int] = {}

    def __call__(self, command):
        self.calls.append(list(command))
        if command[:4] == ["gcloud", "dataproc", "jobs", "describe"]:
            assert command[5:] == ["--region", "europe-west1", "--format=json"]
            answers = self.documents[command[4]]
            index = min(self.seen.get(command[4], 0), len(answers) - 1)
            self.seen[command[4]] = self.seen.get(command[4], 0) + 1
            answer = answers[index]
            return answer if isinstance(answer, CommandResult) else CommandResult(0, json.dumps(answer), "")
        assert command == ["gcloud", "storage", "ls", COMMITS]
        index = min(self.seen.get("ls", 0), len(self.listings) - 1)
        self.seen["ls"] = self.seen.get("ls", 0) + 1
        return self.listings[index]


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def wait(cloud: FakeCloud, clock: FakeClock, timeout: float = 900, interval: float = 15) -> tuple[int, str]:
    out = io.StringIO()
    batches = wait_for_jobs(IDS, "europe-west1", run=cloud, timeout=timeout, interval=interval,
                            clock=clock, sleep=clock.sleep, out=out)
    return batches, out.getvalue()


def commits(*batches: int) -> CommandResult:
    return CommandResult(0, "".join(f"{COMMITS}{n}\n" for n in batches), "")


@pytest.mark.parametrize(("state", "failed", "running"), [
    ("STATE_UNSPECIFIED", False, False), ("PENDING", False, False), ("SETUP_DONE", False, False),
    ("RUNNING", False, True), ("CANCEL_PENDING", True, False), ("CANCEL_STARTED", True, False),
    ("CANCELLED", True, False), ("DONE", True, False), ("ERROR", True, False),
    ("ATTEMPT_FAILURE", True, False),
])
def test_every_dataproc_job_state_is_read(state, failed, running):
    status = parse_job("consumer", with_state(recorded("consumer-running"), state))
    assert (status.failed, status.running) == (failed, running)


@pytest.mark.parametrize(("yarn", "failed", "running"), [
    ("ACCEPTED", False, False), ("SUBMITTED", False, False), ("RUNNING", False, True),
    ("FINISHED", True, False), ("FAILED", True, False), ("KILLED", True, False),
])
def test_a_running_job_counts_only_when_its_yarn_application_runs(yarn, failed, running):
    status = parse_job("producer", with_state(recorded("producer-running"), "RUNNING", yarn))
    assert (status.failed, status.running) == (failed, running)


def test_the_recorded_error_is_read_with_its_details_and_driver_output():
    status = parse_job("consumer", recorded("consumer-error"))
    assert (status.job_id, status.state, status.driver_output) == (IDS["consumer"], "ERROR", DRIVER_OUTPUT)
    assert status.details.startswith("Google Cloud Dataproc Agent reports job failure.")
    assert job_status.commits_folder(parse_job("consumer", recorded("consumer-running"))) == COMMITS


def test_waits_through_pending_until_running_with_a_committed_batch():
    cloud = FakeCloud([recorded("consumer-pending"), recorded("consumer-running")],
                      [recorded("producer-accepted"), recorded("producer-accepted"),
                       recorded("producer-running")],
                      [NO_OBJECTS, commits(0, 1)])
    clock = FakeClock()
    batches, printed = wait(cloud, clock)
    assert batches == 2
    assert clock.slept == [15, 15]
    lines = printed.splitlines()
    assert lines[0] == ("[    0s] consumer PENDING; producer RUNNING (YARN ACCEPTED); "
                        "consumer batches committed: 0")
    assert lines[1] == ("[   15s] consumer RUNNING (YARN RUNNING); producer RUNNING (YARN ACCEPTED); "
                        "consumer batches committed: 0")
    assert lines[2] == ("[   30s] consumer RUNNING (YARN RUNNING); producer RUNNING (YARN RUNNING); "
                        "consumer batches committed: 2")
    assert cloud.calls[0] == ["gcloud", "dataproc", "jobs", "describe", IDS["consumer"],
                              "--region", "europe-west1", "--format=json"]


def test_a_job_that_dies_fails_at_once_with_its_state_details_and_driver_output():
    cloud = FakeCloud([recorded("consumer-pending"), recorded("consumer-error")],
                      [recorded("producer-running")], [NO_OBJECTS])
    clock = FakeClock()
    with pytest.raises(JobsNotRunning) as failed:
        wait(cloud, clock)
    message = str(failed.value)
    assert f"consumer job {IDS['consumer']}: ERROR" in message
    assert f"driver output: {DRIVER_OUTPUT}" in message
    assert "Google Cloud Dataproc Agent reports job failure" in message
    assert "producer" not in message
    assert clock.slept == [15]


@pytest.mark.parametrize("state", ["ATTEMPT_FAILURE", "CANCELLED", "DONE"])
def test_a_failed_attempt_a_cancel_or_an_ended_stream_fails(state):
    producer = with_state(recorded("producer-running"), state)
    cloud = FakeCloud([recorded("consumer-running")], [producer], [commits(0)])
    clock = FakeClock()
    with pytest.raises(JobsNotRunning) as failed:
        wait(cloud, clock)
    expected = f"a streaming job is not running:\nproducer job {IDS['producer']}: {state}"
    assert str(failed.value).startswith(expected)
    assert clock.slept == []


def test_no_progress_times_out_at_the_bound_naming_the_commits_folder():
    cloud = FakeCloud([recorded("consumer-running")], [recorded("producer-running")], [NO_OBJECTS])
    clock = FakeClock()
    with pytest.raises(JobsNotRunning) as timed_out:
        wait(cloud, clock, timeout=60, interval=15)
    message = str(timed_out.value)
    assert message.startswith("the streaming jobs were not running with progress after 60 s:")
    assert f"the consumer has committed no batch under {COMMITS}" in message
    assert f"driver output: {DRIVER_OUTPUT}" in message
    assert clock.slept == [15, 15, 15, 15]
    assert clock.now - 1000.0 == 60


def test_a_job_stuck_waiting_for_yarn_times_out_with_its_yarn_state():
    cloud = FakeCloud([recorded("consumer-running")], [recorded("producer-accepted")], [commits(0)])
    with pytest.raises(JobsNotRunning) as timed_out:
        wait(cloud, FakeClock(), timeout=30)
    assert "  YARN application producer.py: ACCEPTED" in str(timed_out.value)


def test_a_job_that_cannot_be_described_fails_after_three_tries_with_gclouds_words():
    said = "ERROR: (gcloud.dataproc.jobs.describe) NOT_FOUND: Not found: Job projects/p/regions/r/jobs/x"
    cloud = FakeCloud([CommandResult(1, "", said + "\n")], [recorded("producer-running")], [NO_OBJECTS])
    clock = FakeClock()
    with pytest.raises(JobsNotRunning, match=r"could not be described 3 times in a row: ERROR: .*NOT_FOUND"):
        wait(cloud, clock)
    assert clock.slept == [15, 15]


def test_a_listing_error_is_shown_and_not_taken_for_progress():
    denied = CommandResult(1, "", "ERROR: (gcloud.storage.ls) HTTPError 403: no permission\n")
    cloud = FakeCloud([recorded("consumer-running")], [recorded("producer-running")], [denied])
    with pytest.raises(JobsNotRunning) as timed_out:
        wait(cloud, FakeClock(), timeout=15)
    assert "HTTPError 403" in str(timed_out.value)


def test_only_numbered_commit_files_count_as_batches():
    listing = CommandResult(0, f"{COMMITS}0\n{COMMITS}.0.crc\n{COMMITS}1\n{COMMITS}\n", "")
    assert job_status.committed_batches(listing) == (2, "")
    assert job_status.committed_batches(NO_OBJECTS) == (0, "")


def test_missing_job_outputs_are_named():
    with pytest.raises(JobsNotRunning, match="no producer_job_id"):
        job_status.job_ids({"consumer_job_id": "c"})


@pytest.mark.parametrize(("text", "seconds"), [("900", 900), ("90s", 90), ("15m", 900), ("1h", 3600),
                                              ("1d", 86_400), ("1500ms", 1)])
def test_timeouts_read_as_durations(text, seconds):
    assert job_status.parse_duration(text) == seconds


@pytest.mark.parametrize(("bad", "said"), [
    ("15 m", "is not a number of seconds (900) or a positive duration such as 500ms, 30s, 5m, 1h or 1d"),
    ("-5", "is not a number of seconds"), ("", "is not a number of seconds"), ("1.5h", "is not a number"),
    ("0", "is less than a second"), ("500ms", "is less than a second"),
])
def test_a_bad_timeout_is_refused_by_name(bad, said, capsys):
    with pytest.raises(SystemExit):
        job_status.main(["wait", "--region", "europe-west1", "--timeout", bad], stdin=io.StringIO("{}"))
    assert f"{bad!r} {said}" in capsys.readouterr().err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_urns_are_the_ones_the_program_registers(plans, stack):
    registered = {r.name: r.urn for r in plans[stack].of_type(job_status.JOB_TYPE)}
    assert registered == {f"jobs-{job}": job_status.job_urn(stack, job) for job in job_status.JOBS}


def test_an_unknown_job_has_no_urn():
    with pytest.raises(ValueError, match="unknown job 'consumr': expected one of consumer, producer"):
        job_status.job_urn("dev", "consumr")
