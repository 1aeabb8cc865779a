"""Promotion on temporary stack files: only the target's pin changes; refusals say why and what to do."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.release import promote as promotion
from infra.release.promote import Promotion, PromotionError, main, promote
from infra.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
OLD = "5b2d" + "e" * 60
NEW = "3f5a" + "c" * 60
DEPLOYED = "9c1e" + "7" * 60

DEV = """\
# Small and cheap; follows the working tree (no release pin).
config:
  gcp:project: hydrostream-dev
  gcp:region: europe-west1
  hydrostream:jobs:
    rate: 100   # a gentle stream for dev
"""
STAGING = f"""\
# Like prod, smaller. Runs the release promoted from dev.
config:
  gcp:project: hydrostream-staging
  gcp:region: europe-west1   # same region as dev

  hydrostream:dataproc:
    workers: 2
    release: not-the-jobs-release
  hydrostream:jobs:
    # set by `make promote FROM=dev TO=staging`
    release: "{OLD}"   # the release verified in dev
    rate: 500
  hydrostream:kafka:
    partitions: 6
# trailing note
"""
PROD = f"""\
# Larger shapes; deletion protection.
config:
  gcp:project: hydrostream-prod
  hydrostream:protect: true
  hydrostream:jobs:
    release: {OLD}
    farms: 12
"""
LOCAL = """\
config:
  hydrostream:target: local
"""


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    folder = tmp_path / "stacks"
    folder.mkdir()
    for stack, text in (("dev", DEV), ("staging", STAGING), ("prod", PROD), ("local", LOCAL)):
        (folder / f"Pulumi.{stack}.yaml").write_text(text)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def deployed(release: str):
    """A stand-in for the Pulumi CLI lookup that records which stack it was asked about."""

    def lookup(stack: str) -> str:
        lookup.asked.append(stack)
        return release

    lookup.asked = []
    return lookup


def refuse_lookup(stack: str) -> str:
    raise AssertionError(f"the deployed release of {stack} must not be looked up")


def assert_only_the_pin_changed(before: bytes, after: bytes, pin_line: str) -> None:
    """Every line but the pin is byte-identical and in place; the parsed config differs only there."""
    old_lines, new_lines = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(changed) == 1, changed
    assert new_lines[changed[0]] == pin_line
    old_doc, new_doc = yaml.safe_load(before), yaml.safe_load(after)
    release = new_doc["config"]["hydrostream:jobs"].pop("release")
    old_doc["config"]["hydrostream:jobs"].pop("release")
    assert new_doc == old_doc
    assert release == pin_line.split("release:")[1].split("#")[0].strip().strip('"')


def test_promoting_dev_pins_its_deployed_release_in_staging_and_touches_nothing_else(stacks):
    before = snapshot(stacks)
    lookup = deployed(DEPLOYED)
    done = promote("dev", "staging", stacks, deployed_release=lookup)
    assert done == Promotion(stack="staging", path=stacks / "Pulumi.staging.yaml", old=OLD, new=DEPLOYED)
    assert lookup.asked == ["dev"]
    after = snapshot(stacks)
    assert_only_the_pin_changed(
        before["Pulumi.staging.yaml"],
        after["Pulumi.staging.yaml"],
        f'    release: "{DEPLOYED}"   # the release verified in dev\n',
    )
    assert {k: v for k, v in after.items() if k != "Pulumi.staging.yaml"} == {
        k: v for k, v in before.items() if k != "Pulumi.staging.yaml"
    }
    assert "# set by `make promote FROM=dev TO=staging`\n" in after["Pulumi.staging.yaml"].decode()
    assert after["Pulumi.staging.yaml"].decode().endswith("# trailing note\n")
    assert done.describe() == f"staging: hydrostream:jobs.release {OLD} -> {DEPLOYED}"


def test_promoting_staging_copies_its_pin_without_asking_the_deployment(stacks):
    (stacks / "Pulumi.staging.yaml").write_text(STAGING.replace(OLD, NEW))
    before = snapshot(stacks)
    done = promote("staging", "prod", stacks, deployed_release=refuse_lookup)
    assert (done.old, done.new) == (OLD, NEW)
    after = snapshot(stacks)
    assert_only_the_pin_changed(
        before["Pulumi.prod.yaml"], after["Pulumi.prod.yaml"], f'    release: "{NEW}"\n'
    )
    assert {k: v for k, v in after.items() if k != "Pulumi.prod.yaml"} == {
        k: v for k, v in before.items() if k != "Pulumi.prod.yaml"
    }


def test_a_pin_in_the_source_stack_wins_over_its_deployment(stacks):
    (stacks / "Pulumi.dev.yaml").write_text(
        DEV.replace("    rate: 100", f"    release: {NEW}\n    rate: 100")
    )
    assert promote("dev", "staging", stacks, deployed_release=refuse_lookup).new == NEW


def test_the_release_option_overrides_the_source(stacks):
    lookup = deployed(DEPLOYED)
    assert promote("dev", "staging", stacks, release=NEW, deployed_release=lookup).new == NEW
    assert lookup.asked == []
    assert yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())["config"]["hydrostream:jobs"] == {
        "release": NEW,
        "rate": 500,
    }


def test_a_missing_release_line_is_added_first_under_the_jobs_block(stacks):
    target = stacks / "Pulumi.prod.yaml"
    target.write_text(PROD.replace(f"    release: {OLD}\n", ""))
    before = target.read_text()
    done = promote("staging", "prod", stacks, deployed_release=refuse_lookup)
    assert done.old is None
    assert done.describe() == f"prod: hydrostream:jobs.release (none) -> {OLD}"
    assert target.read_text() == before.replace(
        "  hydrostream:jobs:\n", f'  hydrostream:jobs:\n    release: "{OLD}"\n'
    )


def test_a_missing_jobs_block_is_added_at_the_end_of_config(stacks):
    target = stacks / "Pulumi.prod.yaml"
    without_jobs = PROD.split("  hydrostream:jobs:\n")[0]
    target.write_text(without_jobs + "# operators: see docs/\n")
    promote("staging", "prod", stacks, deployed_release=refuse_lookup)
    assert target.read_text() == (
        without_jobs + f'  hydrostream:jobs:\n    release: "{OLD}"\n' + "# operators: see docs/\n"
    )
    assert yaml.safe_load(target.read_text())["config"]["hydrostream:protect"] is True


def test_promoting_the_same_release_again_reports_unchanged_and_leaves_the_file(stacks, capsys):
    assert main(["--from", "dev", "--to", "staging", "--release", NEW, "--stacks-dir", str(stacks)]) == 0
    assert capsys.readouterr().out == f"staging: hydrostream:jobs.release {OLD} -> {NEW}\n"
    before = snapshot(stacks)
    assert main(["--from", "dev", "--to", "staging", "--release", NEW, "--stacks-dir", str(stacks)]) == 0
    assert capsys.readouterr().out == f"staging: hydrostream:jobs.release unchanged ({NEW})\n"
    assert snapshot(stacks) == before


def test_a_digest_of_digits_only_is_quoted_so_it_stays_a_string(stacks):
    digits = "1" * 64
    promote("dev", "staging", stacks, release=digits, deployed_release=refuse_lookup)
    text = (stacks / "Pulumi.staging.yaml").read_text()
    assert f'    release: "{digits}"   # the release verified in dev\n' in text
    assert yaml.safe_load(text)["config"]["hydrostream:jobs"]["release"] == digits


# YAML 1.2 core schema (what the Pulumi CLI's Go parser applies to stack files): int and float.
YAML12_NUMBER = re.compile(r"[-+]?[0-9]+|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


@pytest.mark.parametrize("digest", ["1" * 60 + "e123", "7" * 64, NEW])
def test_every_pin_is_written_quoted_reads_back_as_a_string_and_validates(stacks, digest):
    promote("dev", "staging", stacks, release=digest, deployed_release=refuse_lookup)
    text = (stacks / "Pulumi.staging.yaml").read_text()
    assert f'    release: "{digest}"   # the release verified in dev\n' in text
    config = yaml.safe_load(text)["config"]
    assert config["hydrostream:jobs"]["release"] == digest
    # As the CLI hands it over: the jobs object as JSON text.
    settings = parse_settings("staging", {
        "gcp:project": "hydrostream-staging", "gcp:region": "europe-west1", "gcp:zone": "europe-west1-c",
        "hydrostream:jobs": json.dumps(config["hydrostream:jobs"])})
    assert settings.jobs.release == digest


def test_a_digest_that_yaml_1_2_reads_as_a_number_is_why_pins_are_quoted():
    # PyYAML (YAML 1.1) calls this a string; Go's YAML 1.2 parser calls it a float.
    digest = "1" * 60 + "e123"
    assert yaml.safe_load(f"v: {digest}") == {"v": digest}
    assert YAML12_NUMBER.fullmatch(digest)
    assert promotion.set_release_pin("config:\n  hydrostream:jobs:\n    rate: 1\n", digest) == (
        f'config:\n  hydrostream:jobs:\n    release: "{digest}"\n    rate: 1\n'
    )


def test_windows_line_endings_are_kept(stacks):
    target = stacks / "Pulumi.staging.yaml"
    target.write_bytes(STAGING.replace("\n", "\r\n").encode())
    promote("dev", "staging", stacks, release=NEW, deployed_release=refuse_lookup)
    assert target.read_bytes() == STAGING.replace(OLD, NEW).replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("qa", "staging", "unknown stack 'qa': the known stacks are local, dev, staging, prod"),
        ("dev", "Staging", "unknown stack 'Staging': the known stacks are local, dev, staging, prod"),
        ("prod", "dev", "cannot promote prod -> dev"),
        ("dev", "prod", "cannot promote dev -> prod"),
        ("staging", "dev", "cannot promote staging -> dev"),
        ("staging", "staging", "cannot promote staging -> staging"),
        ("local", "dev", "cannot promote local -> dev"),
        ("dev", "local", "cannot promote dev -> local"),
    ],
)
def test_unknown_stacks_and_other_orders_are_refused(stacks, source, target, message):
    before = snapshot(stacks)
    with pytest.raises(PromotionError) as refused:
        promote(source, target, stacks, release=NEW, deployed_release=refuse_lookup)
    assert message in str(refused.value)
    if message.startswith("cannot"):
        assert "allowed: dev -> staging, staging -> prod" in str(refused.value)
    assert snapshot(stacks) == before


@pytest.mark.parametrize("bad", ["3f5a", NEW.upper(), NEW + "0", NEW[:-1] + "g", f" {NEW}", ""])
def test_a_release_that_is_not_a_digest_is_refused(stacks, bad):
    before = snapshot(stacks)
    with pytest.raises(PromotionError, match="is not a release digest"):
        promote("dev", "staging", stacks, release=bad, deployed_release=refuse_lookup)
    assert snapshot(stacks) == before


def test_a_malformed_source_pin_or_deployed_output_is_refused(stacks):
    (stacks / "Pulumi.staging.yaml").write_text(STAGING.replace(f'"{OLD}"', "latest"))
    with pytest.raises(PromotionError, match="'latest' is not a release digest"):
        promote("staging", "prod", stacks, deployed_release=refuse_lookup)
    with pytest.raises(PromotionError, match=r"'v1\.2', is not a release digest"):
        promote("dev", "staging", stacks, deployed_release=deployed("v1.2"))
    assert (stacks / "Pulumi.prod.yaml").read_text() == PROD


@pytest.mark.parametrize("missing", ["staging", "dev"])
def test_a_missing_stack_file_is_named(stacks, missing):
    path = stacks / f"Pulumi.{missing}.yaml"
    path.unlink()
    with pytest.raises(PromotionError, match=f"stack file {path} does not exist"):
        promote("dev", "staging", stacks, deployed_release=deployed(DEPLOYED))


def test_a_flow_style_jobs_block_is_refused_untouched(stacks):
    target = stacks / "Pulumi.staging.yaml"
    target.write_text("config:\n  gcp:project: p\n  hydrostream:jobs: {rate: 500}\n")
    with pytest.raises(PromotionError, match="block style"):
        promote("dev", "staging", stacks, release=NEW, deployed_release=refuse_lookup)
    assert target.read_text() == "config:\n  gcp:project: p\n  hydrostream:jobs: {rate: 500}\n"


def test_an_edit_that_changes_more_than_the_pin_is_undone(stacks, monkeypatch):
    real_edit = promotion.set_release_pin
    monkeypatch.setattr(
        promotion, "set_release_pin", lambda text, release: real_edit(text, release).replace("500", "501")
    )
    before = snapshot(stacks)
    with pytest.raises(PromotionError, match="would have changed more than the pin"):
        promote("dev", "staging", stacks, release=NEW, deployed_release=refuse_lookup)
    assert snapshot(stacks) == before


def fake_pulumi(folder: Path, script: str) -> Path:
    folder.mkdir()
    executable = folder / "pulumi"
    executable.write_text("#!/bin/sh\n" + script)
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    return folder


def test_the_deployed_release_comes_from_the_pulumi_cli(stacks, tmp_path, monkeypatch):
    log = tmp_path / "pulumi.log"
    bin_dir = fake_pulumi(tmp_path / "bin", f'echo "$(pwd -P) $*" > {log}\necho {DEPLOYED}\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert promote("dev", "staging", stacks).new == DEPLOYED
    assert log.read_text() == f"{ROOT} stack output release --stack dev --non-interactive\n"


def test_a_stack_without_a_release_output_fails_with_the_cli_message(stacks, tmp_path, monkeypatch):
    said = "error: current stack does not have output property 'release'"
    bin_dir = fake_pulumi(tmp_path / "bin", f'echo "{said}" >&2\nexit 255\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    before = snapshot(stacks)
    with pytest.raises(PromotionError) as refused:
        promote("dev", "staging", stacks)
    message = str(refused.value)
    assert "dev pins no release" in message
    assert "no `release` stack output" in message
    assert said in message
    assert "--release <digest>" in message
    assert "python -m infra.release.bundle" in message
    assert snapshot(stacks) == before


def test_without_the_pulumi_cli_the_message_says_so_and_suggests_release(stacks, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    before = snapshot(stacks)
    with pytest.raises(PromotionError) as refused:
        promote("dev", "staging", stacks)
    message = str(refused.value)
    assert "the Pulumi CLI is not installed" in message
    assert "--release <digest>" in message
    assert "python -m infra.release.bundle" in message
    assert snapshot(stacks) == before


def test_the_command_line_prints_the_change_or_the_refusal(stacks):
    command = [sys.executable, "-m", "infra.release.promote", "--from", "dev", "--to", "staging",
               "--stacks-dir"]
    done = subprocess.run(
        [*command, str(stacks), "--release", NEW], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"staging: hydrostream:jobs.release {OLD} -> {NEW}\n",
        "",
    )
    refused = subprocess.run(
        [*command, str(stacks), "--release", "nope"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("promote: --release 'nope' is not a release digest")
