"""The git side of a release: the clean commit it is built from, its tag, the way back from digest to commit.

Promoting dev -> staging tags the promoted commit `release-<first 12 hex of the digest>`: an annotated
tag whose message names the whole digest. Pushed beside the stack file that pins the release, it lets
anyone holding a digest find its source: `git checkout release-<12 hex>`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

TAG_PREFIX: Final = "release-"
TAG_DIGITS: Final = 12
_TAG_MESSAGE: Final = "hydrostream jobs release {digest}"
_TAGGED: Final = re.compile(
    r"tag (?P<commit>[0-9a-f]{40,64}) hydrostream jobs release (?P<digest>[0-9a-f]{64})"
)
_DIGEST_OR_PREFIX: Final = re.compile(r"[0-9a-f]{12,64}")


class GitSourceError(ValueError):
    """A tree that is not a clean commit, a tag that names something else, or a failed git call."""


@dataclass(frozen=True)
class ReleaseTag:
    """The git tag of a release and the commit it names; `created` when this run made it."""

    name: str
    commit: str
    created: bool


def release_tag(digest: str) -> str:
    """`release-<first 12 hex>`: the git tag naming the commit a release was built from."""
    return f"{TAG_PREFIX}{digest[:TAG_DIGITS]}"


def clean_commit(root: Path, sources: Iterable[Path]) -> str:
    """The commit checked out at `root`; refused when any of `sources` differs from it or is untracked."""
    head = _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
    paths = [str(path) for path in sources]
    changed = _git(root, "status", "--porcelain=v1", "--untracked-files=all", "--", *paths).splitlines()
    if changed:
        shown = ", ".join(line[3:] for line in changed[:5])
        if len(changed) > 5:
            shown += f" and {len(changed) - 5} more"
        raise GitSourceError(
            f"the working tree at {root} differs from commit {head[:12]} in what a release is built from "
            f"({', '.join(paths)}): {shown}; commit or stash the changes, then promote"
        )
    return head


def tag_release(root: Path, commit: str, digest: str) -> ReleaseTag:
    """Tag `commit` as the source of release `digest`; a tag already naming that release is kept as it is."""
    name = release_tag(digest)
    tagged = _tagged(root, name)
    if tagged is None:
        _git(root, "tag", "--annotate", "--message", _TAG_MESSAGE.format(digest=digest), name, commit)
        return ReleaseTag(name=name, commit=commit, created=True)
    tagged_commit, tagged_digest = tagged
    if tagged_digest != digest:
        raise GitSourceError(
            f"git tag {name} already names release {tagged_digest}, not {digest}: two releases share a "
            f"{TAG_DIGITS}-digit prefix; tag commit {commit[:12]} by hand under another name"
        )
    return ReleaseTag(name=name, commit=tagged_commit, created=False)


def commit_of(root: Path, digest: str) -> str:
    """The commit release `digest` (or a prefix of 12 or more hex digits) was built from, by its tag."""
    if not _DIGEST_OR_PREFIX.fullmatch(digest):
        raise GitSourceError(
            f"{digest!r} is not a release digest or a prefix of one (12 to 64 lowercase hex characters)"
        )
    name = release_tag(digest)
    tagged = _tagged(root, name)
    if tagged is None:
        raise GitSourceError(
            f"no git tag {name} in {root}: fetch the release tags (`git fetch --tags`); a release gets its "
            "tag when it is promoted from dev (`make promote FROM=dev TO=staging`)"
        )
    commit, tagged_digest = tagged
    if not tagged_digest.startswith(digest):
        raise GitSourceError(f"git tag {name} names release {tagged_digest}, not {digest}")
    return commit


def _tagged(root: Path, name: str) -> tuple[str, str] | None:
    """(commit, digest) of the release tag `name`, None when there is no such tag."""
    line = _git(
        root, "for-each-ref", "--format=%(objecttype) %(*objectname) %(contents:subject)", f"refs/tags/{name}"
    ).strip()
    if not line:
        return None
    match = _TAGGED.fullmatch(line)
    if match is None:
        raise GitSourceError(
            f"git tag {name} is not a release tag (an annotated tag whose message is "
            f"{_TAG_MESSAGE.format(digest='<digest>')!r}): {line!r}"
        )
    return match["commit"], match["digest"]


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise GitSourceError("git is not installed (no `git` on PATH)") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        detail = said[-1] if said else f"exit status {done.returncode}"
        raise GitSourceError(f"`git {' '.join(args)}` in {root} failed: {detail}")
    return done.stdout
