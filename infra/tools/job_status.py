"""After `pulumi up` on GCP: wait until both jobs run and the consumer commits a batch, or say why not.

The provider calls a Dataproc job created once it leaves PENDING, and with `wait_for_completion`
unset it also accepts ERROR and ATTEMPT_FAILURE: a consumer that dies at start-up (a bad
argument, a missing package) leaves `pulumi up` green. `scripts/deploy.sh` therefore runs

    pulumi stack output --json --stack dev | python -m infra.tools.job_status wait --region europe-west1

which polls `gcloud dataproc jobs describe` for `consumer_job_id` and `producer_job_id` until both
are RUNNING (and no YARN application of theirs is stuck or ended) and the consumer's checkpoint
holds a committed batch, and otherwise fails naming the job's state, its status details and its
driver output (`driverOutputResourceUri`). The checkpoint is read from the consumer's own
`--checkpoint-location` argument, so it cannot drift from what the job was given.

    python -m infra.tools.job_status urn --stack dev --job consumer

prints the Pulumi URN of one job, for `pulumi up --replace <urn>` (`make resubmit`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO

from hydrostream_jobs import durations
from hydrostream_jobs.consumer_job import CONSUMER_QUERY

from infra import stack_file

JOBS: Final = ("consumer", "producer")
OUTPUTS: Final = {job: f"{job}_job_id" for job in JOBS}  # stack outputs naming each job's id

# Dataproc JobStatus.State (google.cloud.dataproc.v1). ATTEMPT_FAILURE is one failed attempt of a
# restartable job; a job that fails while the deploy watches it is not ready, whatever follows. Every
# other state (STATE_UNSPECIFIED, PENDING, SETUP_DONE) is a job still starting.
RUNNING: Final = "RUNNING"
ENDED: Final = frozenset(
    {"CANCEL_PENDING", "CANCEL_STARTED", "CANCELLED", "DONE", "ERROR", "ATTEMPT_FAILURE"})
# YarnApplication.State: a stream's application either runs or waits (ACCEPTED: no container for
# its application master yet); FINISHED, FAILED and KILLED all mean the stream stopped.
YARN_ENDED: Final = frozenset({"FINISHED", "FAILED", "KILLED"})

# The job resources' place in the program (infra/gcp/stack.py, infra/gcp/jobs.py): their URNs.
JOBS_COMPONENT_TYPE: Final = "hydrostream:jobs:StreamingJobs"
JOBS_COMPONENT_NAME: Final = "jobs"
JOB_TYPE: Final = "gcp:dataproc/job:Job"

DEFAULT_TIMEOUT_SECONDS: Final = 15 * 60
DEFAULT_INTERVAL_SECONDS: Final = 15.0
COMMAND_TIMEOUT_SECONDS: Final = 120
MAX_DESCRIBE_ERRORS: Final = 3  # in a row, per job: a missing job or no credentials does not heal
_COMMIT = re.compile(r"/commits/[0-9]+$")


class JobsNotRunning(RuntimeError):
    """The jobs did not reach RUNNING with a committed batch; the message says which, why, where to look."""

    def __init__(self, message: str, jobs: Sequence[str] = ()):
        super().__init__(message)
        self.jobs = tuple(jobs)  # the jobs to resubmit once the cause is fixed


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(command: Sequence[str]) -> CommandResult:
    """Run `command` (bounded); a missing program is reported like a failed one."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT_SECONDS)
    except FileNotFoundError:
        return CommandResult(127, "", f"{command[0]}: not installed (not on PATH)")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"`{' '.join(command)}` did not answer in {COMMAND_TIMEOUT_SECONDS} s")
    return CommandResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class JobStatus:
    """The parts of a Dataproc job (`gcloud dataproc jobs describe --format=json`) the deploy acts on."""

    job: str
    job_id: str
    state: str
    details: str
    driver_output: str
    yarn: tuple[tuple[str, str], ...]  # (application name, YARN state)
    args: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """True when the job or one of its YARN applications has stopped or is being cancelled."""
        return self.state in ENDED or any(state in YARN_ENDED for _, state in self.yarn)

    @property
    def running(self) -> bool:
        """True when Dataproc runs the job and none of its YARN applications is still waiting."""
        return self.state == RUNNING and all(state == "RUNNING" for _, state in self.yarn)

    def summary(self) -> str:
        """`consumer RUNNING (YARN ACCEPTED)`: one progress fragment."""
        yarn = ", ".join(state for _, state in self.yarn)
        return f"{self.job} {self.state}" + (f" (YARN {yarn})" if yarn else "")

    def explain(self) -> str:
        """Several lines for the operator: id, state, Dataproc's details and where the driver output is."""
        lines = [f"{self.job} job {self.job_id}: {self.state}"]
        lines += [f"  YARN application {name}: {state}" for name, state in self.yarn]
        if self.details:
            lines += ["  details: " + self.details.strip().replace("\n", "\n           ")]
        lines.append(f"  driver output: {self.driver_output or '(not reported yet)'}")
        return "\n".join(lines)


def parse_job(job: str, document: Mapping[str, Any]) -> JobStatus:
    """The JobStatus of one job from its describe JSON (REST field names)."""
    status = document.get("status") or {}
    spark = document.get("pysparkJob") or document.get("sparkJob") or {}
    return JobStatus(
        job=job,
        job_id=str((document.get("reference") or {}).get("jobId", "")),
        state=str(status.get("state") or "STATE_UNSPECIFIED"),
        details=str(status.get("details") or ""),
        driver_output=str(document.get("driverOutputResourceUri") or ""),
        yarn=tuple((str(app.get("name", "")), str(app.get("state", "STATE_UNSPECIFIED")))
                   for app in document.get("yarnApplications") or ()),
        args=tuple(str(arg) for arg in spark.get("args") or ()),
    )


def commits_folder(consumer: JobStatus) -> str:
    """Where the consumer's query commits its batches: `<--checkpoint-location>/<query>/commits/`."""
    args = list(consumer.args)
    if "--checkpoint-location" not in args or args.index("--checkpoint-location") + 1 >= len(args):
        raise JobsNotRunning(f"{consumer.job} job {consumer.job_id} has no --checkpoint-location argument, "
                             "so its progress cannot be checked")
    location = args[args.index("--checkpoint-location") + 1].rstrip("/")
    return f"{location}/{CONSUMER_QUERY}/commits/"


def committed_batches(listing: CommandResult) -> tuple[int, str]:
    """(batches committed, error) from `gcloud storage ls` of the commits folder; none yet is not an error."""
    if listing.returncode != 0:
        if "matched no objects" in listing.stderr:
            return 0, ""
        lines = listing.stderr.strip().splitlines() or [f"exit status {listing.returncode}"]
        return 0, lines[-1]
    return sum(1 for line in listing.stdout.splitlines() if _COMMIT.search(line.strip())), ""


def job_ids(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Each job's Dataproc id from the stack outputs; a missing one is named."""
    missing = [name for name in OUTPUTS.values()
               if not isinstance(outputs.get(name), str) or not outputs[name]]
    if missing:
        raise JobsNotRunning("the stack outputs have no " + " or ".join(missing)
                             + ": is this a GCP stack that `pulumi up` completed?")
    return {job: outputs[name] for job, name in OUTPUTS.items()}


def describe_command(job_id: str, region: str) -> list[str]:
    """The gcloud command that prints one job as JSON."""
    return ["gcloud", "dataproc", "jobs", "describe", job_id, "--region", region, "--format=json"]


def list_command(folder: str) -> list[str]:
    """The gcloud command that lists the consumer's committed batches."""
    return ["gcloud", "storage", "ls", folder]


def wait_for_jobs(
    ids: Mapping[str, str],
    region: str,
    *,
    run: Runner = run_command,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    out: TextIO = sys.stdout,
) -> int:
    """Poll until every job runs and the consumer has committed a batch; returns that batch count.

    Raises JobsNotRunning as soon as a job fails, or at `timeout` with every job's state.
    """
    start = clock()
    errors = dict.fromkeys(ids, 0)
    statuses: dict[str, JobStatus] = {}
    problems: dict[str, str] = {}
    batches = 0
    while True:
        for job, job_id in ids.items():
            described = run(describe_command(job_id, region))
            try:
                statuses[job] = parse_job(job, json.loads(described.stdout))
            except (json.JSONDecodeError, AttributeError):
                errors[job] += 1
                said = (described.stderr.strip().splitlines() or [f"exit status {described.returncode}"])[-1]
                problems[job] = f"`{' '.join(describe_command(job_id, region))}` failed: {said}"
                if errors[job] >= MAX_DESCRIBE_ERRORS:
                    raise JobsNotRunning(f"{job} job {job_id} could not be described "
                                         f"{errors[job]} times in a row: {said}") from None
                continue
            errors[job] = 0
            problems.pop(job, None)
        failed = [status for status in statuses.values() if status.failed]
        if failed:
            raise JobsNotRunning("a streaming job is not running:\n" + "\n".join(s.explain() for s in failed),
                                 [status.job for status in failed])
        consumer = statuses.get("consumer")
        if consumer is not None and consumer.running:
            batches, error = committed_batches(run(list_command(commits_folder(consumer))))
            if error:
                problems["progress"] = f"listing {commits_folder(consumer)} failed: {error}"
            else:
                problems.pop("progress", None)
        elapsed = clock() - start
        ready = all(job in statuses and statuses[job].running for job in ids) and batches > 0
        parts = [statuses[job].summary() if job in statuses else f"{job} unknown" for job in ids]
        print(f"[{elapsed:5.0f}s] " + "; ".join(parts) + f"; consumer batches committed: {batches}"
              + "".join(f"\n        {problem}" for problem in problems.values()), file=out, flush=True)
        if ready:
            return batches
        if elapsed + interval > timeout:
            waiting = [statuses[job].explain() for job in ids if job in statuses]
            if consumer is not None and consumer.running and batches == 0:
                waiting.append(f"the consumer has committed no batch under {commits_folder(consumer)}")
            raise JobsNotRunning(
                f"the streaming jobs were not running with progress after {timeout:.0f} s:\n"
                + "\n".join([*waiting, *problems.values()]),
                [job for job in ids if job not in statuses or not statuses[job].running] or ["consumer"])
        sleep(interval)


def job_urn(stack: str, job: str, project: str | None = None) -> str:
    """The Pulumi URN of one job resource, for `pulumi up --replace`."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}: expected one of {', '.join(JOBS)}")
    project = project or stack_file.project_name()
    return (f"urn:pulumi:{stack}::{project}::{JOBS_COMPONENT_TYPE}${JOB_TYPE}"
            f"::{JOBS_COMPONENT_NAME}-{job}")


def parse_duration(value: str) -> int:
    """Whole seconds in `900` (seconds, as JOBS_TIMEOUT has always taken) or a duration such as `15m`."""
    try:
        milliseconds = int(value) * 1000 if value.isdigit() else durations.milliseconds(value)
    except durations.DurationError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (900) or "
                                         f"{durations.GRAMMAR}") from None
    if milliseconds < 1000:
        raise argparse.ArgumentTypeError(f"{value!r} is less than a second")
    return milliseconds // 1000


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    """Command line: `wait` (stack outputs JSON on stdin) or `urn`; exit 1 with the reason on failure."""
    parser = argparse.ArgumentParser(prog="python -m infra.tools.job_status",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser("wait", help="wait for both jobs; stack outputs (JSON) on stdin")
    wait.add_argument("--region", required=True, help="the GCP region the stack's Dataproc jobs run in")
    wait.add_argument("--stack", default="<stack>", help="the stack, named in the resubmit hint "
                                                         "(default: %(default)s)")
    wait.add_argument("--timeout", type=parse_duration, default=DEFAULT_TIMEOUT_SECONDS,
                      help="give up after this long (900, 90s, 15m, 1h; default 15m)")
    wait.add_argument("--interval", type=_positive, default=DEFAULT_INTERVAL_SECONDS,
                      help="seconds between polls (default: %(default)s)")
    urn = commands.add_parser("urn", help="print one job's URN")
    urn.add_argument("--stack", required=True, help="the stack whose job it is")
    urn.add_argument("--job", required=True, choices=JOBS, help="which job: %(choices)s")
    args = parser.parse_args(argv)
    if args.command == "urn":
        print(job_urn(args.stack, args.job))
        return 0
    try:
        outputs = json.loads(stdin.read())
        if not isinstance(outputs, dict):
            raise JobsNotRunning("the stack outputs on stdin are not a JSON object")
        ids = job_ids(outputs)
        print(f"Waiting up to {args.timeout} s for {', '.join(f'{j} ({i})' for j, i in ids.items())} "
              f"in {args.region} to run and the consumer to commit a batch.", flush=True)
        batches = wait_for_jobs(ids, args.region, timeout=args.timeout, interval=args.interval)
    except json.JSONDecodeError as error:
        print(f"job_status: the stack outputs on stdin are not JSON ({error})", file=sys.stderr)
        return 1
    except JobsNotRunning as error:
        print(f"job_status: {error}", file=sys.stderr)
        for job in error.jobs:
            print(f"job_status: fix the cause, then resubmit: make resubmit STACK={args.stack} JOB={job}",
                  file=sys.stderr)
        return 1
    print(f"Both jobs are running; the consumer has committed {batches} batch{'es' if batches > 1 else ''}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
