"""Promotion moves only what the previous stage runs and verified; only the target's pin line changes.

Each test promotes in a temporary checkout (a git repository holding what a release is built from and
the stack files), with a stub `pulumi` on PATH that answers from a JSON file what each stack runs
(`release` output) and verified (the `hydrostream:verified-release` stack tag).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.release import promote as promotion
from infra.release.bundle import checkout_bundle
from infra.release.promote import VERIFIED_TAG, Promotion, PromotionError, main, promote, write_release_pin
from infra.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
ZERO = "0" * 64
OLD = "5b2d" + "e" * 60
NEW = "3f5a" + "c" * 60
OTHER = "9c1e" + "7" * 60
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}

DEV = """\
# Small and cheap; follows the working tree (no release pin).
config:
  gcp:project: hydrostream-dev
  hydrostream:jobs:
    rate: 100   # a gentle stream for dev
"""
STAGING = f"""\
# Like prod, smaller. Runs the release promoted from dev.
config:
  gcp:project: 'hydrostream-staging'
  gcp:region: "europe-west1"   # same region as dev

  hydrostream:dataproc:
    workers: 2
    release: not-the-jobs-release
  hydrostream:jobs:
    # set by `make promote FROM=dev TO=staging`
    release: "{OLD}"   # the release verified in dev
    rate: 500
    trigger: '30s'
  hydrostream:kafka:
    partitions: 0x1F
    ratio: 1.50
# trailing note
"""
PROD = f"""\
# Larger shapes; deletion protection.
config:
  gcp:project: hydrostream-prod
  hydrostream:protect: true
  hydrostream:jobs:
    release: "{ZERO}"
    farms: 12
"""

# The stub CLI: `stack output release` and `stack tag get <tag>` per stack from state.json; logs its calls.
PULUMI = '''
import json, os, sys
from pathlib import Path
stub = Path(os.environ["STUB_DIR"])
args = sys.argv[1:]
with open(stub / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\\n")
stack = args[args.index("--stack") + 1]
state = json.loads((stub / "state.json").read_text()).get(stack, {})
if args[:3] == ["stack", "output", "release"] and "release" in state:
    print(state["release"])
elif args[:3] == ["stack", "tag", "get"] and args[3] in state.get("tags", {}):
    print(state["tags"][args[3]])
elif args[:2] == ["stack", "output"]:
    sys.exit(f"error: current stack does not have output property '{args[2]}'")
else:
    sys.exit(f"error: stack tag '{args[3]}' not found for stack '{stack}'")
'''


class Checkout:
    """A git repository with jobs/, the release's locks, stacks/ and the Makefile; a stub pulumi beside it."""

    def __init__(self, tmp: Path):
        self.repo = tmp / "repo"
        shutil.copytree(ROOT / "jobs", self.repo / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
        (self.repo / "infra" / "release").mkdir(parents=True)
        for lock in ("connector-jars.lock", "python-wheels.lock"):
            shutil.copy2(ROOT / "infra" / "release" / lock, self.repo / "infra" / "release")
        for name in ("requirements.lock", "pyproject.toml", "Makefile"):
            shutil.copy2(ROOT / name, self.repo / name)
        self.stacks = self.repo / "stacks"
        self.stacks.mkdir()
        for stack, text in (("dev", DEV), ("staging", STAGING), ("prod", PROD)):
            (self.stacks / f"Pulumi.{stack}.yaml").write_text(text)
        (self.repo / ".gitignore").write_text(".venv\n__pycache__/\n")
        self.git("init", "--quiet")
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", "a checkout to promote from")
        self.head = self.git("rev-parse", "HEAD").strip()
        self.digest = checkout_bundle(self.repo).digest
        self.stub = tmp / "stub"
        self.bin = tmp / "bin"
        self.stub.mkdir()
        self.bin.mkdir()
        pulumi = self.bin / "pulumi"
        pulumi.write_text(f"#!{sys.executable}\n{PULUMI}")
        pulumi.chmod(0o755)
        self.state: dict[str, dict] = {}
        (self.stub / "state.json").write_text("{}")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.repo), *args], check=True, capture_output=True,
                              text=True, env=os.environ | GIT_IDENTITY).stdout

    def runs(self, stack: str, release: str, verified: str | None = None) -> None:
        """`stack` deployed `release` and its verified tag reads `verified` (None: no tag)."""
        tags = {} if verified is None else {VERIFIED_TAG: verified}
        self.state[stack] = {"release": release, "tags": tags}
        (self.stub / "state.json").write_text(json.dumps(self.state))

    def env(self) -> dict[str, str]:
        return os.environ | GIT_IDENTITY | {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                                            "STUB_DIR": str(self.stub)}

    def calls(self) -> list[list[str]]:
        log = self.stub / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def files(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.stacks.iterdir())}

    def tags(self) -> list[str]:
        return self.git("tag", "--list").split()

    def promote(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "infra.release.promote", *args, "--repo", str(self.repo)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=self.env(), cwd=ROOT)

    def make_promote(self, *variables: str) -> subprocess.CompletedProcess:
        if not (self.repo / ".venv").exists():
            (self.repo / ".venv").symlink_to(ROOT / ".venv")
        # PYTHONSAFEPATH: the checkout's infra/ holds only the jar lock, and must not hide the real package.
        return subprocess.run(["make", "--no-print-directory", "-C", str(self.repo), "promote", *variables],
                              capture_output=True, text=True, timeout=60,
                              env=self.env() | {"PYTHONSAFEPATH": "1"})


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch) -> Checkout:
    made = Checkout(tmp_path)
    for key, value in made.env().items():
        monkeypatch.setenv(key, value)
    return made


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    """(old, new) for each line that differs; the files must have the same number of lines."""
    old, new = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


# --- dev -> staging: the clean checkout's release, which dev runs and verified; its commit is tagged

def test_dev_to_staging_pins_the_checkout_release_dev_verified_and_tags_its_commit(checkout):
    checkout.runs("dev", checkout.digest, verified=checkout.digest)
    before = checkout.files()
    done = checkout.promote("--from", "dev", "--to", "staging")
    assert done.returncode == 0, done.stderr
    tag = f"release-{checkout.digest[:12]}"
    assert done.stdout.splitlines() == [
        f"staging: hydrostream:jobs.release {OLD} -> {checkout.digest}",
        f"release {checkout.digest}: deployed and verified in dev",
        f"built from commit {checkout.head}, tagged {tag}: push the tag with the stack file "
        f"(`git push origin {tag}`)",
    ]
    after = checkout.files()
    assert changed_lines(before["Pulumi.staging.yaml"], after["Pulumi.staging.yaml"]) == [
        (f'    release: "{OLD}"   # the release verified in dev\n',
         f'    release: "{checkout.digest}"   # the release verified in dev\n')]
    assert {k: v for k, v in after.items() if k != "Pulumi.staging.yaml"} == {
        k: v for k, v in before.items() if k != "Pulumi.staging.yaml"}
    assert checkout.git("rev-parse", f"{tag}^{{commit}}").strip() == checkout.head
    assert checkout.git("tag", "--list", "--format=%(objecttype) %(contents:subject)", tag).strip() == (
        f"tag hydrostream jobs release {checkout.digest}")
    assert checkout.calls() == [
        ["stack", "output", "release", "--stack", "dev", "--non-interactive"],
        ["stack", "tag", "get", VERIFIED_TAG, "--stack", "dev", "--non-interactive"],
    ]


def test_promoting_the_same_release_again_keeps_the_tag_and_the_file(checkout):
    checkout.runs("dev", checkout.digest, verified=checkout.digest)
    assert checkout.promote("--from", "dev", "--to", "staging").returncode == 0
    before = checkout.files()
    again = checkout.promote("--from", "dev", "--to", "staging", "--release", checkout.digest)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == f"staging: hydrostream:jobs.release unchanged ({checkout.digest})"
    assert f"already tagged release-{checkout.digest[:12]}" in again.stdout
    assert checkout.files() == before
    assert checkout.tags() == [f"release-{checkout.digest[:12]}"]


@pytest.mark.parametrize(("change", "named"), [
    ("jobs/consumer.py", "jobs/consumer.py"),
    ("jobs/hydrostream_jobs/new_module.py", "jobs/hydrostream_jobs/new_module.py"),
    ("infra/release/connector-jars.lock", "infra/release/connector-jars.lock"),
    ("requirements.lock", "requirements.lock"),
])
def test_dev_to_staging_refuses_a_tree_that_differs_from_its_commit_in_what_ships(checkout, change, named):
    path = checkout.repo / change
    path.write_text((path.read_text() if path.exists() else "") + "# changed\n")
    changed = checkout_bundle(checkout.repo).digest
    checkout.runs("dev", changed, verified=changed)
    before = checkout.files()
    done = checkout.promote("--from", "dev", "--to", "staging")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"promote: the working tree at {checkout.repo} differs from commit "
                                  f"{checkout.head[:12]} in what a release is built from")
    assert named in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert checkout.files() == before
    assert checkout.tags() == []
    assert checkout.calls() == []


def test_a_change_outside_what_ships_does_not_block_dev_to_staging(checkout):
    (checkout.repo / "Makefile").write_text("# a local edit\n")
    checkout.runs("dev", checkout.digest, verified=checkout.digest)
    done = checkout.promote("--from", "dev", "--to", "staging")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("runs", "verified", "message"), [
    (OTHER, OTHER, f"dev runs release {OTHER}, not {{digest}}: deploy it there first (`make up STACK=dev`)"),
    ("{digest}", "unverified",
     "dev runs release {digest} but has not verified it (stack tag hydrostream:verified-release is "
     "'unverified'): `make wait STACK=dev` verifies it"),
    ("{digest}", OTHER, f"has not verified it (stack tag hydrostream:verified-release is '{OTHER}')"),
    ("{digest}", None, "stack tag 'hydrostream:verified-release' not found for stack 'dev'"),
])
def test_dev_to_staging_refuses_a_release_dev_does_not_run_or_has_not_verified(checkout, runs, verified,
                                                                               message):
    checkout.runs("dev", runs.format(digest=checkout.digest),
                  verified=None if verified is None else verified.format(digest=checkout.digest))
    before = checkout.files()
    done = checkout.promote("--from", "dev", "--to", "staging")
    assert done.returncode == 1
    assert message.format(digest=checkout.digest) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert checkout.files() == before
    assert checkout.tags() == []


def test_a_stack_never_deployed_is_refused_with_the_cli_message(checkout):
    done = checkout.promote("--from", "dev", "--to", "staging")
    assert done.returncode == 1
    assert done.stderr == (
        "promote: cannot check what dev runs: `pulumi stack output release --stack dev --non-interactive` "
        "said: error: current stack does not have output property 'release'\n")


def test_without_the_pulumi_cli_the_message_says_so(checkout, monkeypatch):
    empty = checkout.repo.parent / "empty-bin"
    empty.mkdir()
    git = shutil.which("git")
    assert git
    (empty / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(empty))
    before = checkout.files()
    with pytest.raises(PromotionError, match=r"the Pulumi CLI is not installed \(no `pulumi` on PATH\)"):
        promote("dev", "staging", checkout.repo)
    assert checkout.files() == before
    assert checkout.tags() == []


# --- staging -> prod: the release staging pins, runs and verified

def pin_staging(checkout: Checkout, release: str) -> None:
    (checkout.stacks / "Pulumi.staging.yaml").write_text(STAGING.replace(OLD, release))


def test_staging_to_prod_pins_what_staging_pins_runs_and_verified(checkout):
    pin_staging(checkout, NEW)
    checkout.runs("staging", NEW, verified=NEW)
    before = checkout.files()
    done = checkout.promote("--from", "staging", "--to", "prod")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"prod: hydrostream:jobs.release {ZERO} -> {NEW}\n"
                           f"release {NEW}: deployed and verified in staging\n")
    after = checkout.files()
    assert changed_lines(before["Pulumi.prod.yaml"], after["Pulumi.prod.yaml"]) == [
        (f'    release: "{ZERO}"\n', f'    release: "{NEW}"\n')]
    assert {k: v for k, v in after.items() if k != "Pulumi.prod.yaml"} == {
        k: v for k, v in before.items() if k != "Pulumi.prod.yaml"}
    assert checkout.tags() == []
    assert [call[:3] for call in checkout.calls()] == [
        ["stack", "output", "release"], ["stack", "tag", "get"]]
    assert all(call[call.index("--stack") + 1] == "staging" for call in checkout.calls())


HOLES = [
    # (staging's pin, the release staging runs, its verified tag, make variables, the refusal)
    (ZERO, None, None, ["RELEASE=" + "ab" * 32],
     f"pins no release yet (hydrostream:jobs.release is {ZERO}): promote to staging and deploy it there"),
    (ZERO, ZERO, ZERO, [], f"pins no release yet (hydrostream:jobs.release is {ZERO})"),
    (NEW, NEW, NEW, [f"RELEASE={OTHER}"], f"--release {OTHER} is not the release staging pins ({NEW})"),
    (NEW, OTHER, OTHER, [], f"staging runs release {OTHER}, not {NEW}: deploy it there first (`make up"),
    (NEW, NEW, "unverified", [], f"staging runs release {NEW} but has not verified it"),
    (NEW, NEW, OTHER, [], f"staging runs release {NEW} but has not verified it (stack tag "
                          f"hydrostream:verified-release is '{OTHER}')"),
]


@pytest.mark.parametrize(("pin", "runs", "verified", "variables", "message"), HOLES)
def test_staging_to_prod_refuses_anything_staging_has_not_run_and_verified(checkout, pin, runs, verified,
                                                                          variables, message):
    pin_staging(checkout, pin)
    if runs is not None:
        checkout.runs("staging", runs, verified=verified)
    before = checkout.files()
    args = [f"--release={variable.split('=', 1)[1]}" for variable in variables]
    for done in (checkout.promote("--from", "staging", "--to", "prod", *args),
                 checkout.make_promote("FROM=staging", "TO=prod", *variables)):
        assert done.returncode != 0
        refusals = [line for line in done.stderr.splitlines() if line.startswith("promote: ")]
        assert len(refusals) == 1, done.stderr
        assert message in refusals[0]
        assert "Pulumi.prod.yaml" not in done.stdout
        assert checkout.files() == before


@pytest.mark.parametrize(("pin", "release"), [(ZERO, "1" * 64), (NEW, OTHER)])
def test_the_all_zero_pin_and_another_release_are_refused_before_pulumi_is_asked(checkout, pin, release):
    pin_staging(checkout, pin)
    done = checkout.promote("--from", "staging", "--to", "prod", "--release", release)
    assert done.returncode == 1
    assert checkout.calls() == []


def test_make_promote_passes_the_checkout_and_the_release_check(checkout):
    pin_staging(checkout, NEW)
    checkout.runs("staging", NEW, verified=NEW)
    done = checkout.make_promote("FROM=staging", "TO=prod", f"RELEASE={NEW}")
    assert done.returncode == 0, done.stderr
    assert f"prod: hydrostream:jobs.release {ZERO} -> {NEW}\n" in done.stdout
    prod = yaml.safe_load((checkout.stacks / "Pulumi.prod.yaml").read_text())
    assert prod["config"]["hydrostream:jobs"] == {"release": NEW, "farms": 12}


def test_make_promote_without_from_and_to_prints_usage(checkout):
    done = checkout.make_promote("FROM=staging")
    assert done.returncode == 2
    assert "usage: make promote FROM=dev TO=staging [RELEASE=<digest>]" in done.stderr
    # Then what each variable means, from the tool's own --help (its options without the usage line).
    assert "the release is never chosen by hand" in " ".join(done.stderr.split())


@pytest.mark.parametrize(("source", "target", "message"), [
    ("qa", "staging", "unknown stack 'qa': the known stacks are local, dev, staging, prod"),
    ("dev", "Staging", "unknown stack 'Staging': the known stacks are local, dev, staging, prod"),
    ("prod", "dev", "cannot promote prod -> dev"),
    ("dev", "prod", "cannot promote dev -> prod"),
    ("staging", "staging", "cannot promote staging -> staging"),
    ("local", "dev", "cannot promote local -> dev"),
])
def test_unknown_stacks_and_other_orders_are_refused(checkout, source, target, message):
    before = checkout.files()
    with pytest.raises(PromotionError) as refused:
        promote(source, target, checkout.repo)
    assert message in str(refused.value)
    if message.startswith("cannot"):
        assert "allowed: dev -> staging, staging -> prod" in str(refused.value)
    assert checkout.files() == before
    assert checkout.calls() == []


@pytest.mark.parametrize("bad", ["3f5a", NEW.upper(), NEW + "0", NEW[:-1] + "g", f" {NEW}", ""])
def test_a_release_that_is_not_a_digest_is_refused(checkout, bad):
    with pytest.raises(PromotionError, match="is not a release digest"):
        promote("staging", "prod", checkout.repo, release=bad)
    assert checkout.calls() == []


@pytest.mark.parametrize("pin", ["latest", "1" * 60 + "e123", "7" * 64])
def test_an_unquoted_or_malformed_source_pin_is_read_as_yaml_1_2_and_refused(checkout, pin):
    # YAML 1.2, as the Pulumi CLI reads it, makes the last two numbers (PyYAML's 1.1 calls the first of
    # them a string): only a quoted pin is safe.
    text = STAGING.replace(f'"{OLD}"', pin)
    (checkout.stacks / "Pulumi.staging.yaml").write_text(text)
    before = checkout.files()
    with pytest.raises(PromotionError, match="is not a release digest") as refused:
        promote("staging", "prod", checkout.repo)
    named = f"{checkout.stacks / 'Pulumi.staging.yaml'}: hydrostream:jobs.release "
    assert str(refused.value).startswith(named)
    assert checkout.files() == before
    assert checkout.calls() == []


@pytest.mark.parametrize("missing", ["staging", "prod"])
def test_a_missing_stack_file_is_named(checkout, missing):
    path = checkout.stacks / f"Pulumi.{missing}.yaml"
    path.unlink()
    with pytest.raises(PromotionError, match=f"stack file {re.escape(str(path))} does not exist"):
        promote("staging", "prod", checkout.repo)


@pytest.mark.parametrize(("stack", "text", "where", "key"), [
    ("prod", PROD + "  gcp:project: again\n", "8:3", "gcp:project"),
    ("staging", STAGING.replace("    rate: 500\n", "    rate: 500\n    release: x\n"), "13:5", "release"),
])
def test_a_duplicate_key_is_one_line_naming_file_line_and_column(checkout, stack, text, where, key):
    path = checkout.stacks / f"Pulumi.{stack}.yaml"
    path.write_text(text)
    before = checkout.files()
    done = checkout.promote("--from", "staging", "--to", "prod")
    assert done.returncode == 1
    assert done.stderr == f"promote: {path}:{where}: duplicate key {key!r}\n"
    assert text.splitlines()[int(where.split(":")[0]) - 1].strip().startswith(f"{key}:")
    assert checkout.files() == before


def test_help_prints_usage(checkout):
    done = checkout.promote("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m infra.release.promote [-h] --from STACK --to STACK")
    assert "--release DIGEST" in done.stdout


# --- the edit itself: ruamel.yaml round trip, only the pin's line changes

@pytest.fixture
def staging_file(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(STAGING)
    return path


def test_every_other_line_keeps_its_bytes_comments_quoting_and_order(staging_file):
    before = staging_file.read_bytes()
    assert write_release_pin(staging_file, NEW) == OLD
    after = staging_file.read_bytes()
    assert changed_lines(before, after) == [
        (f'    release: "{OLD}"   # the release verified in dev\n',
         f'    release: "{NEW}"   # the release verified in dev\n')]
    assert after == before.replace(OLD.encode(), NEW.encode())


def test_an_unquoted_pin_is_replaced_by_a_quoted_one_keeping_its_comment(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(PROD.replace(f'"{ZERO}"', f"{OLD}  # from staging"))
    write_release_pin(path, NEW)
    assert path.read_text() == PROD.replace(f'"{ZERO}"', f'"{NEW}" # from staging')


def test_an_unquoted_pin_of_the_same_digits_is_quoted_not_left_as_a_number(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    digits = "7" * 64
    path.write_text(PROD.replace(f'"{ZERO}"', digits))
    write_release_pin(path, digits)
    assert path.read_text() == PROD.replace(ZERO, digits)


def test_an_empty_jobs_block_gets_the_pin(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    text = "config:\n  hydrostream:jobs:   # filled by promotion\n  hydrostream:protect: true\n"
    path.write_text(text)
    assert write_release_pin(path, NEW) is None
    assert path.read_text() == text.replace("promotion\n", f'promotion\n    release: "{NEW}"\n')


def test_a_missing_release_line_is_added_first_under_the_jobs_block(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(PROD.replace(f'    release: "{ZERO}"\n', ""))
    assert write_release_pin(path, NEW) is None
    assert path.read_text() == PROD.replace(ZERO, NEW)


def test_a_missing_jobs_block_is_added_at_the_end_of_config(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    without_jobs = PROD.split("  hydrostream:jobs:\n")[0]
    path.write_text(without_jobs)
    write_release_pin(path, NEW)
    assert path.read_text() == without_jobs + f'  hydrostream:jobs:\n    release: "{NEW}"\n'


def test_four_space_indentation_and_indented_sequences_are_kept(tmp_path):
    path = tmp_path / "Pulumi.staging.yaml"
    text = ("config:\n    hydrostream:grafana:\n        cidrs:\n          - 10.0.0.0/8\n"
            f'    hydrostream:jobs:\n        release: "{OLD}"\n')
    path.write_text(text)
    write_release_pin(path, NEW)
    assert path.read_text() == text.replace(OLD, NEW)


def test_windows_line_endings_and_a_missing_final_newline_are_kept(staging_file):
    text = STAGING.replace("\n", "\r\n").removesuffix("\r\n")
    staging_file.write_bytes(text.encode())
    write_release_pin(staging_file, NEW)
    assert staging_file.read_bytes() == text.replace(OLD, NEW).encode()


@pytest.mark.parametrize("digest", ["1" * 60 + "e123", "7" * 64, NEW])
def test_every_pin_is_written_quoted_reads_back_as_a_string_and_validates(staging_file, digest):
    write_release_pin(staging_file, digest)
    text = staging_file.read_text()
    assert f'    release: "{digest}"   # the release verified in dev\n' in text
    config = yaml.safe_load(text)["config"]
    assert config["hydrostream:jobs"]["release"] == digest
    # As the CLI hands it over: the jobs object as JSON text.
    settings = parse_settings("staging", {
        "gcp:project": "hydrostream-staging", "gcp:region": "europe-west1", "gcp:zone": "europe-west1-c",
        "hydrostream:jobs": json.dumps({"release": digest})})
    assert settings.jobs.release == digest


@pytest.mark.parametrize(("text", "message"), [
    ("config:\n  hydrostream:jobs: {rate: 500}\n",
     "write config and hydrostream:jobs in block style (one `key: value` a line) to promote into it"),
    ("config:\n  hydrostream:protect: True\n  hydrostream:jobs:\n    rate: 1\n",
     "setting hydrostream:jobs.release would also rewrite other lines ('  hydrostream:protect: True' -> "
     "'  hydrostream:protect: true'), so the file was left as it was; set `release: \"<new>\"` under "
     "`hydrostream:jobs:` by hand"),
    ("config:\n  hydrostream:jobs:\n    rate: 1\n  hydrostream:kafka: ~\n",
     "would also rewrite other lines ('  hydrostream:kafka: ~' -> '  hydrostream:kafka:')"),
])
def test_an_edit_that_would_rewrite_other_lines_is_refused_untouched(tmp_path, text, message):
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(text)
    with pytest.raises(PromotionError) as refused:
        write_release_pin(path, NEW)
    assert message.replace("<new>", NEW) in str(refused.value)
    assert str(refused.value).startswith(f"{path}: ")
    assert path.read_text() == text


def test_the_line_check_catches_an_edit_that_moves_anything_else(staging_file, monkeypatch):
    real_edit = promotion.set_release_pin
    monkeypatch.setattr(promotion, "set_release_pin",
                        lambda path, text, release: real_edit(path, text, release).replace("500", "501"))
    with pytest.raises(PromotionError, match=r"other lines \('    rate: 500' -> '    rate: 501'\)"):
        write_release_pin(staging_file, NEW)
    assert staging_file.read_text() == STAGING


def test_promotion_describes_the_change():
    path = Path("stacks/Pulumi.prod.yaml")
    assert Promotion("staging", "prod", path, None, NEW).describe() == (
        f"prod: hydrostream:jobs.release (none) -> {NEW}\nrelease {NEW}: deployed and verified in staging")


def test_the_in_process_command_prints_the_refusal(checkout, capsys):
    pin_staging(checkout, ZERO)
    assert main(["--from", "staging", "--to", "prod", "--repo", str(checkout.repo)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("promote: ")
    assert "Pulumi.staging.yaml pins no release yet" in captured.err
