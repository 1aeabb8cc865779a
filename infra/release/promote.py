"""Promote a jobs release one stage on: pin in the next stack file what the previous stage ran and verified.

    python -m infra.release.promote --from dev --to staging [--release DIGEST] [--repo DIR]
    python -m infra.release.promote --from staging --to prod [--release DIGEST] [--repo DIR]

The release is never chosen by hand. `dev -> staging` takes the release of the checkout, which must be
a clean commit in everything a release is built from, and tags that commit `release-<12 hex>`;
`staging -> prod` takes the release staging pins. Either way the source stack must run it (its
`release` stack output) and have verified it (its stack tag `hydrostream:verified-release`, which
scripts/deploy.sh sets once both jobs run and the consumer committed). `--release` only confirms.

Stack files are read as the Pulumi CLI reads them (YAML 1.2, a duplicate key is an error) and edited
round-trip with ruamel.yaml; the result is checked line by line: only the pin's line changes (or is
added, with its `hydrostream:jobs:` header when there was none), else nothing is written.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from infra.release import git_source
from infra.release.bundle import (
    NOTHING_PROMOTED,
    PROMOTION_ORDER,
    RELEASE_SOURCES,
    REPO_ROOT,
    checkout_bundle,
    is_release_digest,
    previous_stage,
)
from infra.settings import STACKS
from infra.stack_file import StackFileError, load_document, yaml_1_2

JOBS_KEY: Final = "hydrostream:jobs"
RELEASE_KEY: Final = "release"
RELEASE_OUTPUT: Final = "release"  # the stack output naming the release a deployed stack runs
# Set by scripts/deploy.sh to the `release` output once the jobs' wait passed; "unverified" while an
# update has not been waited for. Stack tags live in the state backend, which the whole team shares.
VERIFIED_TAG: Final = "hydrostream:verified-release"
_DIGEST_HELP: Final = "64 lowercase hex characters, as printed by `python -m infra.release.bundle`"


class PromotionError(ValueError):
    """A promotion that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Promotion:
    """One promotion: the target stack's pin before and after, and where the release came from."""

    source: str
    stack: str
    path: Path
    old: str | None
    new: str
    tag: git_source.ReleaseTag | None = None  # dev -> staging: the commit the release is built from

    def describe(self) -> str:
        """For the operator: what changed in the target stack file, and the release's commit and tag."""
        if self.old == self.new:
            lines = [f"{self.stack}: {JOBS_KEY}.{RELEASE_KEY} unchanged ({self.new})"]
        else:
            lines = [f"{self.stack}: {JOBS_KEY}.{RELEASE_KEY} {self.old or '(none)'} -> {self.new}"]
        lines.append(f"release {self.new}: deployed and verified in {self.source}")
        if self.tag is not None:
            state = "tagged" if self.tag.created else "already tagged"
            lines.append(
                f"built from commit {self.tag.commit}, {state} {self.tag.name}: push the tag with the stack "
                f"file (`git push origin {self.tag.name}`)"
            )
        return "\n".join(lines)


def stack_file(stacks_dir: Path, stack: str) -> Path:
    """`<stacks_dir>/Pulumi.<stack>.yaml`, which must exist."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise PromotionError(f"stack file {path} does not exist")
    return path


def check_promotion_order(source: str, target: str) -> None:
    """Refuse unknown stacks and any pair but one stage on along dev -> staging -> prod."""
    for stack in (source, target):
        if stack not in STACKS:
            raise PromotionError(f"unknown stack {stack!r}: the known stacks are {', '.join(STACKS)}")
    if previous_stage(target) != source:
        allowed = ", ".join(f"{stage} -> {nxt}" for stage, nxt in pairwise(PROMOTION_ORDER))
        raise PromotionError(
            f"cannot promote {source} -> {target}: a release moves one stage at a time along "
            f"{' -> '.join(PROMOTION_ORDER)}; allowed: {allowed}"
        )


def load_stack(path: Path) -> CommentedMap:
    """A stack file as the Pulumi CLI reads it (YAML 1.2, no duplicate keys), ready for round-trip edits."""
    try:
        document = load_document(path)
    except StackFileError as error:
        raise PromotionError(str(error)) from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap) or not isinstance(document.get("config") or {}, dict):
        raise PromotionError(f"{path} is not a stack file: expected a mapping with a `config:` mapping")
    jobs = (document.get("config") or {}).get(JOBS_KEY)
    if jobs is not None and not isinstance(jobs, CommentedMap):
        raise PromotionError(f"{path}: {JOBS_KEY} must be a mapping of job settings, not {jobs!r}")
    return document


def pinned_release(path: Path) -> str | None:
    """The release a stack file pins (`hydrostream:jobs.release`), or None when it pins none."""
    release = _jobs(load_stack(path)).get(RELEASE_KEY)
    if release is not None and not is_release_digest(release):
        raise PromotionError(
            f"{path}: {JOBS_KEY}.{RELEASE_KEY} {release!r} is not a release digest ({_DIGEST_HELP}; "
            "quoted, or YAML 1.2 may read it as a number)"
        )
    return None if release is None else str(release)


def set_release_pin(path: Path, text: str, release: str) -> str:
    """The stack file text with the pin set (or added first under `hydrostream:jobs:`), all else unchanged."""
    document = yaml_1_2().load(text)
    if document is None:
        document = CommentedMap()
    if document.get("config") is None:
        document["config"] = CommentedMap()
    config = document["config"]
    jobs = config.get(JOBS_KEY)
    if config.fa.flow_style() or (jobs is not None and jobs.fa.flow_style()):
        raise PromotionError(
            f"{path}: write config and {JOBS_KEY} in block style (one `key: value` a line) to promote into it"
        )
    # Always quoted: the Pulumi CLI reads stack files as YAML 1.2, where an unquoted digest such as
    # `1234e5...` or all digits is a number.
    pin = DoubleQuotedScalarString(release)
    if jobs is None:
        config[JOBS_KEY] = CommentedMap([(RELEASE_KEY, pin)])
    elif RELEASE_KEY in jobs:
        jobs[RELEASE_KEY] = pin
    else:
        jobs.insert(0, RELEASE_KEY, pin)
    yaml = yaml_1_2()
    _, indent, offset = load_yaml_guess_indent(text)
    if indent is not None:
        offset = offset or 0
        yaml.indent(mapping=indent, sequence=max(indent, offset + 2), offset=offset)
    written = io.StringIO()
    yaml.dump(document, written)
    result = written.getvalue()
    if "\r\n" in text:  # ruamel writes "\n", except within the comments it keeps
        result = result.replace("\r\n", "\n").replace("\n", "\r\n")
    if text and not text.endswith("\n"):
        result = result.removesuffix("\r\n" if "\r\n" in text else "\n")
    return result


def write_release_pin(path: Path, release: str) -> str | None:
    """Pin `release` in the stack file at `path` if only the pin's line changes; returns the previous pin."""
    text = path.read_bytes().decode("utf-8")  # as is: read_text would turn "\r\n" into "\n"
    before = load_stack(path)
    pinned = _jobs(before).get(RELEASE_KEY)
    old = None if pinned is None else str(pinned)
    if isinstance(pinned, str) and pinned == release:  # digits YAML 1.2 reads as a number get quoted
        return old
    edited = set_release_pin(path, text, release)
    after = yaml_1_2().load(edited)
    kept_before = _lines_but_the_pin(text, before)
    kept_after = _lines_but_the_pin(edited, after, added=_added_keys(before))
    if _jobs(after).get(RELEASE_KEY) != release or kept_before != kept_after:
        pairs = zip(kept_before, kept_after, strict=False)
        changed = next((f"{a.rstrip()!r} -> {b.rstrip()!r}" for a, b in pairs if a != b),
                       f"{len(kept_before)} lines -> {len(kept_after)}")
        raise PromotionError(
            f"{path}: setting {JOBS_KEY}.{RELEASE_KEY} would also rewrite other lines ({changed}), so the "
            f"file was left as it was; set `release: \"{release}\"` under `{JOBS_KEY}:` by hand"
        )
    path.write_bytes(edited.encode("utf-8"))
    return old


def pulumi_stack_value(stack: str, repo: Path, *command: str) -> str:
    """What `pulumi <command> --stack <stack>` prints (an output, a tag); refused with the CLI's reason."""
    argv = ["pulumi", *command, "--stack", stack, "--non-interactive"]
    shown = " ".join(argv)
    try:
        done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise PromotionError(
            f"cannot check what {stack} runs: the Pulumi CLI is not installed (no `pulumi` on PATH)"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PromotionError(f"cannot check what {stack} runs: `{shown}` could not run ({error})") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        detail = said[-1] if said else f"exit status {done.returncode}"
        raise PromotionError(f"cannot check what {stack} runs: `{shown}` said: {detail}")
    return done.stdout.strip()


def check_verified(stack: str, release: str, repo: Path) -> None:
    """Refuse unless `stack` deployed `release` (its `release` output) and verified it (its verified tag)."""
    deployed = pulumi_stack_value(stack, repo, "stack", "output", RELEASE_OUTPUT)
    if deployed != release:
        raise PromotionError(
            f"{stack} runs release {deployed or '(none)'}, not {release}: deploy it there first "
            f"(`make up STACK={stack}`), then promote"
        )
    verified = pulumi_stack_value(stack, repo, "stack", "tag", "get", VERIFIED_TAG)
    if verified != release:
        raise PromotionError(
            f"{stack} runs release {release} but has not verified it (stack tag {VERIFIED_TAG} is "
            f"{verified!r}): `make wait STACK={stack}` verifies it once both jobs run and the consumer "
            "commits"
        )


def promote(source: str, target: str, repo: Path = REPO_ROOT, release: str | None = None) -> Promotion:
    """Pin in `target` the release `source` runs and verified; `release`, when given, must be that one."""
    check_promotion_order(source, target)
    if release is not None and not is_release_digest(release):
        raise PromotionError(f"--release {release!r} is not a release digest ({_DIGEST_HELP})")
    stacks_dir = repo / "stacks"
    target_path = stack_file(stacks_dir, target)
    load_stack(target_path)  # an unreadable target is refused before anything is asked or tagged
    commit = None
    if source == PROMOTION_ORDER[0]:
        try:
            commit = git_source.clean_commit(repo, RELEASE_SOURCES)
        except git_source.GitSourceError as error:
            raise PromotionError(str(error)) from None
        candidate = checkout_bundle(repo).digest
        origin = f"the release of commit {commit[:12]}, which {source} runs"
    else:
        source_path = stack_file(stacks_dir, source)
        candidate = pinned_release(source_path)
        if candidate is None or candidate == NOTHING_PROMOTED:
            raise PromotionError(
                f"{source_path} pins no release yet ({JOBS_KEY}.{RELEASE_KEY} is "
                f"{candidate or '(none)'}): promote to {source} and deploy it there first "
                f"(`make promote FROM={previous_stage(source)} TO={source}`, `make up STACK={source}`)"
            )
        origin = f"the release {source} pins"
    if release is not None and release != candidate:
        raise PromotionError(
            f"--release {release} is not {origin} ({candidate}): a promotion moves only what {source} "
            "runs and verified"
        )
    check_verified(source, candidate, repo)
    tag = None
    if commit is not None:
        try:
            tag = git_source.tag_release(repo, commit, candidate)
        except git_source.GitSourceError as error:
            raise PromotionError(str(error)) from None
    old = write_release_pin(target_path, candidate)
    return Promotion(source=source, stack=target, path=target_path, old=old, new=candidate, tag=tag)


def main(argv: list[str] | None = None) -> int:
    """Command line: promote, print what changed, exit 1 with the reason when refused."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.release.promote",
        description="Pin in the next stack's file the jobs release the previous stage runs and verified "
                    "(dev -> staging: the clean checkout's release, which dev runs; its commit is tagged "
                    "release-<12 hex>. staging -> prod: the release staging pins and runs).",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="STACK", help="dev or staging")
    parser.add_argument("--to", dest="target", required=True, metavar="STACK", help="staging or prod")
    parser.add_argument(
        "--release", metavar="DIGEST",
        help="refuse unless this is the release promoted (a check: the release is never chosen by hand)",
    )
    parser.add_argument(
        "--repo", type=Path, default=REPO_ROOT,
        help="the checkout to promote in: its stacks/, jobs/ and git history (default: this one)",
    )
    args = parser.parse_args(argv)
    try:
        promotion = promote(args.source, args.target, args.repo, args.release)
    except PromotionError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 1
    print(promotion.describe())
    return 0


def _jobs(document: CommentedMap) -> dict[str, Any]:
    return (document.get("config") or {}).get(JOBS_KEY) or {}


def _added_keys(before: CommentedMap) -> tuple[str, ...]:
    """The headers a pin brings along into a file without them: `config:`, `hydrostream:jobs:`."""
    if "config" not in before:
        return ("config", JOBS_KEY)
    return () if JOBS_KEY in (before["config"] or {}) else (JOBS_KEY,)


def _lines_but_the_pin(text: str, document: CommentedMap, added: tuple[str, ...] = ()) -> list[str]:
    """The file's lines without the pin's and without the lines of the `added` headers."""
    skipped = set()
    jobs = _jobs(document)
    if RELEASE_KEY in jobs:
        skipped.add(jobs.lc.key(RELEASE_KEY)[0])
    if "config" in added:
        skipped.add(document.lc.key("config")[0])
    if JOBS_KEY in added:
        skipped.add(document["config"].lc.key(JOBS_KEY)[0])
    return [line for number, line in enumerate(text.splitlines(keepends=True)) if number not in skipped]


if __name__ == "__main__":
    sys.exit(main())
