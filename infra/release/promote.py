"""Promote a jobs release one stage on: pin the release a stack runs in the next stack's file.

    python -m infra.release.promote --from dev --to staging [--release DIGEST] [--stacks-dir stacks]

Only the `release` line under `hydrostream:jobs:` of the target stack file changes; the edit is
textual (comments, order and every other key stay byte-for-byte) and checked by parsing the file
again, which restores the original if anything else moved.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import yaml

from infra.release.bundle import JOBS_DIR, PROMOTION_ORDER, is_release_digest, previous_stage
from infra.settings import STACKS

REPO_ROOT: Final = JOBS_DIR.parent
STACKS_DIR: Final = REPO_ROOT / "stacks"
JOBS_KEY: Final = "hydrostream:jobs"
RELEASE_KEY: Final = "release"
RELEASE_OUTPUT: Final = "release"  # the stack output naming the release a deployed stack runs

_CONFIG_HEADER = re.compile(r"config:[ \t]*(#.*)?")
_JOBS_KEY = re.compile(r"[ ]+([\"']?)hydrostream:jobs\1:")
_JOBS_HEADER = re.compile(r"[ ]+([\"']?)hydrostream:jobs\1:[ \t]*(#.*)?")
_RELEASE_LINE = re.compile(r"(?P<lead>[ ]+release:[ \t]*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s#]*)(?P<trail>.*)")
_DIGEST_HELP: Final = "64 lowercase hex characters, as printed by `python -m infra.release.bundle`"


class PromotionError(ValueError):
    """A promotion that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Promotion:
    """The outcome of one promotion: the target stack's pin before and after."""

    stack: str
    path: Path
    old: str | None
    new: str

    def describe(self) -> str:
        """One line for the operator: what changed in the target stack file."""
        if self.old == self.new:
            return f"{self.stack}: {JOBS_KEY}.{RELEASE_KEY} unchanged ({self.new})"
        return f"{self.stack}: {JOBS_KEY}.{RELEASE_KEY} {self.old or '(none)'} -> {self.new}"


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


def pinned_release(path: Path) -> str | None:
    """The release a stack file pins (`hydrostream:jobs.release`), or None when it pins none."""
    release = _jobs_config(_load_stack(path.read_text(encoding="utf-8"), path), path).get(RELEASE_KEY)
    if release is not None and not is_release_digest(release):
        raise PromotionError(
            f"{path}: {JOBS_KEY}.{RELEASE_KEY} {release!r} is not a release digest ({_DIGEST_HELP})"
        )
    return release


def pulumi_deployed_release(stack: str) -> str:
    """The release a deployed stack runs, from its `release` stack output (needs the Pulumi CLI)."""
    command = ["pulumi", "stack", "output", RELEASE_OUTPUT, "--stack", stack, "--non-interactive"]
    unknown = f"{stack} pins no release in its stack file, so the release it runs comes from its deployment"
    hint = ("pass --release <digest> instead (`python -m infra.release.bundle` prints it at the commit"
            f" {stack} runs)")
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError:
        raise PromotionError(
            f"{unknown}, but the Pulumi CLI is not installed (no `pulumi` on PATH); {hint}"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PromotionError(
            f"{unknown}, but `{' '.join(command)}` could not run ({error}); {hint}"
        ) from None
    if done.returncode != 0:
        detail = (
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        )
        raise PromotionError(
            f"{unknown}, but it has no `{RELEASE_OUTPUT}` stack output "
            f"(`{' '.join(command)}` said: {detail}); {hint}"
        )
    release = done.stdout.strip()
    if not is_release_digest(release):
        raise PromotionError(
            f"{unknown}, but its `{RELEASE_OUTPUT}` output {release!r} is not a release digest; {hint}"
        )
    return release


def set_release_pin(text: str, release: str) -> str:
    """The stack file text with only the `release:` line under `hydrostream:jobs:` set (or added)."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    value = _yaml_scalar(release)
    config = next((i for i, line in enumerate(lines) if _CONFIG_HEADER.fullmatch(_body(line))), None)
    if config is None:
        return _inserted(lines, len(lines), ["config:", f"  {JOBS_KEY}:", f"    release: {value}"], newline)
    config_end, step = _block(lines, config)
    step = step or 2
    children = [i for i in range(config + 1, config_end) if _indent(lines[i]) == step]
    jobs = next((i for i in children if _JOBS_HEADER.fullmatch(_body(lines[i]))), None)
    if jobs is None:
        if any(_JOBS_KEY.match(_body(lines[i])) for i in children):
            raise PromotionError(
                f"write {JOBS_KEY} in block style (one `key: value` per line) to promote into it"
            )
        added = [f"{' ' * step}{JOBS_KEY}:", f"{' ' * 2 * step}release: {value}"]
        return _inserted(lines, config_end, added, newline)
    jobs_end, child = _block(lines, jobs)
    child = child or 2 * step
    for i in range(jobs + 1, jobs_end):
        match = _RELEASE_LINE.fullmatch(_body(lines[i]))
        if match and _indent(lines[i]) == child:
            lines[i] = match["lead"] + value + match["trail"] + lines[i][len(_body(lines[i])) :]
            return "".join(lines)
    return _inserted(lines, jobs + 1, [f"{' ' * child}release: {value}"], newline)


def write_release_pin(path: Path, release: str) -> str | None:
    """Pin `release` in the stack file at `path`, verified by parsing; returns the previous value."""
    original = path.read_bytes()
    text = original.decode("utf-8")
    before = _load_stack(text, path)
    jobs = _jobs_config(before, path)
    old = None if jobs.get(RELEASE_KEY) is None else str(jobs[RELEASE_KEY])
    if old == release:
        return old
    config = {**(before.get("config") or {}), JOBS_KEY: {**jobs, RELEASE_KEY: release}}
    expected = {**before, "config": config}
    path.write_bytes(set_release_pin(text, release).encode("utf-8"))
    try:
        after = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        after = error
    if after != expected:
        path.write_bytes(original)
        raise PromotionError(
            f"{path}: setting {JOBS_KEY}.{RELEASE_KEY} textually would have changed more than the pin, "
            f"so the file was left as it was; set `release: {release}` under `{JOBS_KEY}:` by hand"
        )
    return old


def promote(
    source: str,
    target: str,
    stacks_dir: Path = STACKS_DIR,
    release: str | None = None,
    deployed_release: Callable[[str], str] = pulumi_deployed_release,
) -> Promotion:
    """Pin in `target` the release `source` runs (its pin, else its deployed output), or `release`."""
    check_promotion_order(source, target)
    if release is not None and not is_release_digest(release):
        raise PromotionError(f"--release {release!r} is not a release digest ({_DIGEST_HELP})")
    target_path = stack_file(stacks_dir, target)
    if release is None:
        release = pinned_release(stack_file(stacks_dir, source)) or deployed_release(source)
        if not is_release_digest(release):
            raise PromotionError(
                f"the release {source} runs, {release!r}, is not a release digest ({_DIGEST_HELP})"
            )
    old = write_release_pin(target_path, release)
    return Promotion(stack=target, path=target_path, old=old, new=release)


def main(argv: list[str] | None = None) -> int:
    """Command line: promote, print what changed, exit 1 with the reason when refused."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.release.promote",
        description="Pin the jobs release a stack runs in the next stack's file (dev -> staging -> prod).",
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="STACK", help="the stack that runs it"
    )
    parser.add_argument("--to", dest="target", required=True, metavar="STACK", help="the stack to pin it in")
    parser.add_argument(
        "--release", metavar="DIGEST", help="promote this release instead (python -m infra.release.bundle)"
    )
    parser.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help="folder of Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    try:
        promotion = promote(args.source, args.target, args.stacks_dir, args.release)
    except PromotionError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 1
    print(promotion.describe())
    return 0


def _load_stack(text: str, path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PromotionError(f"{path} is not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise PromotionError(f"{path} is not a stack file: expected a mapping with a `config:` mapping")
    return document


def _jobs_config(document: dict[str, Any], path: Path) -> dict[str, Any]:
    jobs = (document.get("config") or {}).get(JOBS_KEY) or {}
    if not isinstance(jobs, dict):
        raise PromotionError(f"{path}: {JOBS_KEY} must be a mapping of job settings, not {jobs!r}")
    return jobs


def _yaml_scalar(release: str) -> str:
    # Always quoted: the Pulumi CLI parses stack files as YAML 1.2, where an unquoted digest such as
    # `1234e5...` or all digits is a number (PyYAML's YAML 1.1 would still call the first a string).
    return f'"{release}"'


def _body(line: str) -> str:
    return line.rstrip("\r\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], header: int) -> tuple[int, int | None]:
    """End (after its last content line) of the mapping under lines[header], and its children's indent."""
    own, end, child = _indent(lines[header]), header + 1, None
    for i in range(header + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _indent(lines[i]) <= own:
            break
        child = _indent(lines[i]) if child is None else child
        end = i + 1
    return end, child


def _inserted(lines: list[str], at: int, added: list[str], newline: str) -> str:
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += newline
    lines[at:at] = [line + newline for line in added]
    return "".join(lines)


if __name__ == "__main__":
    sys.exit(main())
