"""scripts/deploy.sh end to end, stub `pulumi` and `gcloud` on PATH: state and secrets rules, the job wait."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.paths import PROJECT_DIR
from infra.release.promote import VERIFIED_TAG
from infra.tools import job_status

RECORDED = Path(__file__).parent / "dataproc_jobs"
CONSUMER = "hydro-consumer-e6a4af49d96a07ab-1a2b3c4d"
PRODUCER = "hydro-producer-e6a4af49d96a07ab-5e6f7a8b"
KMS = "gcpkms://projects/hydrostream-ops/locations/europe-west1/keyRings/pulumi/cryptoKeys/state"
OUTPUTS = {"consumer_job_id": CONSUMER, "producer_job_id": PRODUCER, "release": "e6a4af49" + "0" * 56,
           "buckets": {"checkpoints": "hydrostream-dev-checkpoints"}}
DRIVER_OUTPUT = ("gs://hydrostream-dev-dataproc-staging/google-cloud-dataproc-metainfo/"
                 f"0f6c3f0e-5b8e-4f57-9a61-2f1d6a1c9e42/jobs/{CONSUMER}/driveroutput")

TOOLS = ("bash", "env", "dirname", "sed", "head", "base64", "mkdir")

# The stubs log each call as one JSON line (argv and the secrets-related environment), then answer.
PULUMI = '''
import json, os, sys
from pathlib import Path
stub = Path(os.environ["STUB_DIR"])
with open(stub / "calls.jsonl", "a") as log:
    log.write(json.dumps({"argv": ["pulumi", *sys.argv[1:]], "passphrase_file":
        os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")}) + "\\n")
args = sys.argv[1:]
if args[:2] == ["config", "get"]:
    print("europe-west1")
elif args[:2] == ["stack", "output"] and "--json" in args:
    print((stub / "outputs.json").read_text())
elif args[:2] == ["stack", "output"]:
    print("consumer_job_id  " + json.loads((stub / "outputs.json").read_text())["consumer_job_id"])
sys.exit(int(os.environ.get("STUB_PULUMI_UP_EXIT", "0")) if args[:1] == ["up"] else 0)
'''
GCLOUD = '''
import json, os, sys
from pathlib import Path
stub = Path(os.environ["STUB_DIR"])
args = sys.argv[1:]
with open(stub / "calls.jsonl", "a") as log:
    log.write(json.dumps({"argv": ["gcloud", *args]}) + "\\n")
def answer(key):
    """The n-th call for `key` gets <key>.<n>, the last one repeating."""
    count = stub / f"{key}.count"
    n = int(count.read_text()) if count.exists() else 0
    count.write_text(str(n + 1))
    found = sorted(stub.glob(f"{key}.*.*"), key=lambda p: int(p.name.split(".")[1]))
    usable = [p for p in found if int(p.name.split(".")[1]) <= n]
    return usable[-1] if usable else None
if args[:3] == ["dataproc", "jobs", "describe"]:
    print(answer(args[3]).read_text())
elif args[:2] == ["storage", "ls"]:
    listing = answer("ls")
    if listing is None or not listing.read_text():
        print("ERROR: (gcloud.storage.ls) One or more URLs matched no objects.", file=sys.stderr)
        sys.exit(1)
    print(listing.read_text(), end="")
else:
    sys.exit(f"unexpected gcloud call {args}")
'''


class Deploy:
    """A copy of the repository's deploy layout in a temporary folder, with stubs on PATH."""

    def __init__(self, tmp: Path):
        self.repo = tmp / "repo"
        (self.repo / "scripts").mkdir(parents=True)
        shutil.copy2(PROJECT_DIR / "scripts" / "deploy.sh", self.repo / "scripts" / "deploy.sh")
        shutil.copytree(PROJECT_DIR / "stacks", self.repo / "stacks")
        (self.repo / ".venv").symlink_to(PROJECT_DIR / ".venv")
        self.stub = tmp / "stub"
        self.bin = tmp / "bin"
        self.stub.mkdir()
        self.bin.mkdir()
        # Only the tools the script uses: no real gcloud or pulumi that this machine may have.
        self.tools = tmp / "tools"
        self.tools.mkdir()
        for tool in TOOLS:
            (self.tools / tool).symlink_to(shutil.which(tool))
        for name, body in (("pulumi", PULUMI), ("gcloud", GCLOUD)):
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{body}")
            path.chmod(0o755)
        (self.stub / "outputs.json").write_text(json.dumps(OUTPUTS))

    def jobs(self, job_id: str, *documents: dict | str) -> None:
        for n, document in enumerate(documents):
            text = ((RECORDED / f"{document}.json").read_text() if isinstance(document, str)
                    else json.dumps(document))
            (self.stub / f"{job_id}.{n}.json").write_text(text)

    def commits(self, *listings: str) -> None:
        for n, listing in enumerate(listings):
            (self.stub / f"ls.{n}.out").write_text(listing)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        base = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
        base |= {"PATH": f"{self.bin}{os.pathsep}{self.tools}", "STUB_DIR": str(self.stub),
                 "JOBS_POLL_SECONDS": "0.01"}
        return subprocess.run([str(self.repo / "scripts" / "deploy.sh"), *args], env=base | env,
                              capture_output=True, text=True, timeout=120, check=False)

    def calls(self) -> list[dict]:
        log = self.stub / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def argvs(self, program: str) -> list[list[str]]:
        return [call["argv"][1:] for call in self.calls() if call["argv"][0] == program]


@pytest.fixture
def deploy(tmp_path) -> Deploy:
    return Deploy(tmp_path)


TEAM = {"PULUMI_BACKEND_URL": "gs://hydrostream-pulumi-state", "SECRETS_PROVIDER": KMS}
COMMITTED = "".join(f"gs://hydrostream-dev-checkpoints/e6a4af49/consumer/consumer/commits/{n}\n"
                    for n in (0, 1))


def test_local_keeps_the_generated_passphrase_next_to_its_file_state(deploy):
    done = deploy.run("outputs", "local", PULUMI_BACKEND_URL=f"file://{deploy.repo}/.pulumi-state")
    assert done.returncode == 0, done.stderr
    generated = deploy.repo / ".pulumi-state" / "passphrase"
    assert generated.stat().st_size > 0 and generated.stat().st_mode & 0o077 == 0
    assert deploy.calls() == [{"argv": ["pulumi", "stack", "output", "--json", "--stack", "local"],
                               "passphrase_file": str(generated)}]


@pytest.mark.parametrize("action", ["up", "outputs", "destroy"])
def test_a_gcp_stack_on_a_file_backend_without_kms_or_passphrase_is_refused_naming_what_to_set(
        deploy, action):
    done = deploy.run(action, "dev", PULUMI_BACKEND_URL=f"file://{deploy.repo}/.pulumi-state")
    assert done.returncode == 1
    assert "Refusing to" in done.stderr and "GCP stack 'dev'" in done.stderr
    assert "set PULUMI_BACKEND_URL=gs://<bucket>" in done.stderr
    assert "SECRETS_PROVIDER=gcpkms://" in done.stderr
    assert "PULUMI_CONFIG_PASSPHRASE or" in done.stderr and "PULUMI_CONFIG_PASSPHRASE_FILE" in done.stderr
    assert deploy.calls() == []
    assert not (deploy.repo / ".pulumi-state").exists()


def test_a_gs_backend_alone_is_not_enough(deploy):
    done = deploy.run("outputs", "staging", PULUMI_BACKEND_URL="gs://team-state")
    assert done.returncode == 1
    assert "PULUMI_BACKEND_URL" not in done.stderr
    assert "stacks/Pulumi.staging.yaml has secretsprovider '(none: passphrase)'" in done.stderr
    assert deploy.calls() == []


def test_the_generated_local_passphrase_is_refused_for_a_gcp_stack_even_when_named(deploy):
    generated = deploy.repo / ".pulumi-state" / "passphrase"
    generated.parent.mkdir()
    generated.write_text("local-only\n")
    done = deploy.run("outputs", "prod", PULUMI_BACKEND_URL="gs://team-state",
                      PULUMI_CONFIG_PASSPHRASE_FILE=str(generated))
    assert done.returncode == 1
    assert "the local stack's generated" in done.stderr
    assert deploy.calls() == []


def test_a_secrets_provider_that_is_not_cloud_kms_is_refused(deploy):
    done = deploy.run("outputs", "dev", PULUMI_BACKEND_URL="gs://team-state", SECRETS_PROVIDER="passphrase")
    assert done.returncode == 1
    assert "SECRETS_PROVIDER must be gcpkms://" in done.stderr


@pytest.mark.parametrize("secrets", [
    {"PULUMI_CONFIG_PASSPHRASE": "the team's own"},
    {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/pulumi-passphrase"},
    {"SECRETS_PROVIDER": KMS},
    {},  # the stack file records a KMS provider
])
def test_a_gs_backend_with_kms_or_an_explicit_passphrase_is_accepted(deploy, secrets):
    if not secrets:
        stack_file = deploy.repo / "stacks" / "Pulumi.dev.yaml"
        stack_file.write_text(f"secretsprovider: {KMS}\nencryptedkey: CiQA\n" + stack_file.read_text())
    done = deploy.run("outputs", "dev", PULUMI_BACKEND_URL="gs://team-state", **secrets)
    assert done.returncode == 0, done.stderr
    assert deploy.argvs("pulumi") == [["stack", "output", "--json", "--stack", "dev"]]
    assert deploy.calls()[0]["passphrase_file"] == secrets.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    assert not (deploy.repo / ".pulumi-state").exists()


def test_up_creates_the_stack_with_the_kms_provider_then_waits_for_running_jobs_with_progress(deploy):
    deploy.jobs(CONSUMER, "consumer-pending", "consumer-running")
    deploy.jobs(PRODUCER, "producer-accepted", "producer-accepted", "producer-running")
    deploy.commits("", COMMITTED)
    done = deploy.run("up", "dev", **TEAM)
    assert done.returncode == 0, done.stderr
    assert deploy.argvs("pulumi") == [
        ["stack", "select", "--create", "--secrets-provider", KMS, "dev", "--non-interactive"],
        ["stack", "tag", "set", VERIFIED_TAG, "unverified", "--stack", "dev"],
        ["up", "--stack", "dev"],
        ["stack", "output", "--stack", "dev"],
        ["config", "get", "gcp:region", "--stack", "dev"],
        ["stack", "output", "--json", "--stack", "dev"],
        ["stack", "tag", "set", VERIFIED_TAG, OUTPUTS["release"], "--stack", "dev"],
    ]
    describes = [argv for argv in deploy.argvs("gcloud") if argv[:3] == ["dataproc", "jobs", "describe"]]
    assert describes[:2] == [
        ["dataproc", "jobs", "describe", job, "--region", "europe-west1", "--format=json"]
        for job in (CONSUMER, PRODUCER)]
    assert len(describes) == 6  # three polls of both jobs
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 3
    assert "consumer PENDING; producer RUNNING (YARN ACCEPTED); consumer batches committed: 0" in progress[0]
    assert "producer RUNNING (YARN RUNNING); consumer batches committed: 2" in progress[2]
    assert "the consumer has committed 2 batches" in done.stdout
    assert f"Verified: dev runs jobs release {OUTPUTS['release']} (stack tag {VERIFIED_TAG})." in done.stdout


def tags_set(deploy: Deploy) -> list[list[str]]:
    return [argv[3:5] for argv in deploy.argvs("pulumi") if argv[:3] == ["stack", "tag", "set"]]


def test_wait_records_the_release_of_the_outputs_it_checked_as_verified(deploy):
    other = "1c0ffee0" + "9" * 56
    (deploy.stub / "outputs.json").write_text(json.dumps({**OUTPUTS, "release": other}))
    deploy.jobs(CONSUMER, "consumer-running")
    deploy.jobs(PRODUCER, "producer-running")
    deploy.commits(COMMITTED)
    done = deploy.run("wait", "staging", **TEAM)
    assert done.returncode == 0, done.stderr
    assert tags_set(deploy) == [[VERIFIED_TAG, other]]
    assert deploy.argvs("pulumi")[-1] == ["stack", "tag", "set", VERIFIED_TAG, other, "--stack", "staging"]


@pytest.mark.parametrize("action", [("up", "dev"), ("wait", "dev"), ("resubmit", "dev", "consumer")])
def test_a_failed_wait_leaves_no_verified_release(deploy, action):
    deploy.jobs(CONSUMER, "consumer-pending", "consumer-error")
    deploy.jobs(PRODUCER, "producer-running")
    done = deploy.run(*action, **TEAM)
    assert done.returncode == 1
    # An update first marks the stack unverified; nothing records a release afterwards.
    expected = [] if action[0] == "wait" else [[VERIFIED_TAG, "unverified"]]
    assert tags_set(deploy) == expected
    assert "Verified:" not in done.stdout


def test_up_fails_when_the_consumer_dies_at_start_with_its_driver_output(deploy):
    deploy.jobs(CONSUMER, "consumer-pending", "consumer-error")
    deploy.jobs(PRODUCER, "producer-running")
    done = deploy.run("up", "dev", **TEAM)
    assert done.returncode == 1
    assert f"consumer job {CONSUMER}: ERROR" in done.stderr
    assert f"driver output: {DRIVER_OUTPUT}" in done.stderr
    assert "make resubmit STACK=dev JOB=consumer" in done.stderr


def test_up_times_out_when_the_consumer_never_commits(deploy):
    deploy.jobs(CONSUMER, "consumer-running")
    deploy.jobs(PRODUCER, "producer-running")
    done = deploy.run("up", "dev", **TEAM, JOBS_TIMEOUT="1s", JOBS_POLL_SECONDS="0.2")
    assert done.returncode == 1
    assert "were not running with progress after 1 s" in done.stderr
    assert "the consumer has committed no batch under gs://hydrostream-dev-checkpoints/" in done.stderr


def test_a_failed_pulumi_up_stops_before_the_wait(deploy):
    done = deploy.run("up", "dev", **TEAM, STUB_PULUMI_UP_EXIT="255")
    assert done.returncode == 255
    assert deploy.argvs("gcloud") == []
    assert tags_set(deploy) == [[VERIFIED_TAG, "unverified"]]


def test_the_local_stack_does_not_wait_for_dataproc(deploy):
    done = deploy.run("up", "local", PULUMI_BACKEND_URL=f"file://{deploy.repo}/.pulumi-state")
    assert done.returncode == 0, done.stderr
    assert [argv[0] for argv in deploy.argvs("pulumi")] == ["stack", "up", "stack"]
    assert deploy.argvs("gcloud") == []
    assert tags_set(deploy) == []


def test_resubmit_replaces_the_one_job_by_urn_then_waits(deploy):
    deploy.jobs(CONSUMER, "consumer-running")
    deploy.jobs(PRODUCER, "producer-running")
    deploy.commits(COMMITTED)
    done = deploy.run("resubmit", "staging", "consumer", **TEAM)
    assert done.returncode == 0, done.stderr
    assert deploy.argvs("pulumi")[:2] == [
        ["stack", "tag", "set", VERIFIED_TAG, "unverified", "--stack", "staging"],
        ["up", "--stack", "staging", "--replace", job_status.job_urn("staging", "consumer")]]
    assert tags_set(deploy) == [[VERIFIED_TAG, "unverified"], [VERIFIED_TAG, OUTPUTS["release"]]]
    assert deploy.argvs("pulumi")[1][-1] == (
        "urn:pulumi:staging::hydrostream::hydrostream:jobs:StreamingJobs$gcp:dataproc/job:Job::jobs-consumer")


@pytest.mark.parametrize("args", [
    ("resubmit", "dev"), ("resubmit", "dev", "both"), ("up", "dev", "consumer")])
def test_bad_usage_is_refused_before_pulumi(deploy, args):
    done = deploy.run(*args, **TEAM)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert deploy.calls() == []


def test_without_gcloud_a_gcp_up_is_refused_up_front(deploy):
    (deploy.bin / "gcloud").unlink()
    done = deploy.run("up", "dev", **TEAM)
    assert done.returncode == 1
    assert "gcloud: not installed" in done.stderr
    assert deploy.calls() == []
