"""A release's git tag: made once on a clean commit, found again from the digest or a prefix of it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.release.git_source import (
    GitSourceError,
    ReleaseTag,
    clean_commit,
    commit_of,
    release_tag,
    tag_release,
)

DIGEST = "3f5a0c1e" + "d" * 56
OTHER = "3f5a0c1e" + "d" * 4 + "e" * 52  # the same first 12 hex digits
IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "consumer.py").write_text("print('consumer')\n")
    (root / "README.md").write_text("notes\n")
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "first")
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env=os.environ | IDENTITY).stdout.strip()


def test_the_tag_is_release_and_the_first_12_hex_digits():
    assert release_tag(DIGEST) == "release-3f5a0c1edddd"


def test_a_tagged_release_is_found_by_digest_and_by_prefix(repo):
    head = git(repo, "rev-parse", "HEAD")
    tagged = tag_release(repo, head, DIGEST)
    assert tagged == ReleaseTag(name="release-3f5a0c1edddd", commit=head, created=True)
    (repo / "README.md").write_text("later\n")
    git(repo, "commit", "--quiet", "--all", "--message", "second")
    assert git(repo, "rev-parse", "HEAD") != head
    assert commit_of(repo, DIGEST) == head
    assert commit_of(repo, DIGEST[:16]) == head
    assert git(repo, "tag", "--list", "--format=%(contents:subject)") == f"hydrostream jobs release {DIGEST}"


def test_tagging_the_same_release_again_keeps_the_first_commit(repo):
    first = git(repo, "rev-parse", "HEAD")
    tag_release(repo, first, DIGEST)
    git(repo, "commit", "--quiet", "--allow-empty", "--message", "same jobs")
    again = tag_release(repo, git(repo, "rev-parse", "HEAD"), DIGEST)
    assert again == ReleaseTag(name="release-3f5a0c1edddd", commit=first, created=False)


def test_two_releases_sharing_a_prefix_are_refused_and_named(repo):
    head = git(repo, "rev-parse", "HEAD")
    tag_release(repo, head, DIGEST)
    with pytest.raises(GitSourceError, match=f"git tag release-3f5a0c1edddd already names release {DIGEST}, "
                                             f"not {OTHER}"):
        tag_release(repo, head, OTHER)
    with pytest.raises(GitSourceError, match=f"release-3f5a0c1edddd names release {DIGEST}, not {OTHER}"):
        commit_of(repo, OTHER)


def test_an_unknown_release_says_to_fetch_the_tags(repo):
    with pytest.raises(GitSourceError, match=r"no git tag release-3f5a0c1edddd in .*: fetch the release tags "
                                             r"\(`git fetch --tags`\)"):
        commit_of(repo, DIGEST)


@pytest.mark.parametrize("bad", ["3f5a0c1eddd", DIGEST.upper(), DIGEST + "0", "release-3f5a0c1edddd"])
def test_what_is_not_a_digest_or_a_long_enough_prefix_is_refused(repo, bad):
    with pytest.raises(GitSourceError, match="is not a release digest or a prefix of one"):
        commit_of(repo, bad)


def test_a_tag_made_by_hand_is_not_taken_for_a_release_tag(repo):
    git(repo, "tag", "release-3f5a0c1edddd")
    with pytest.raises(GitSourceError, match="git tag release-3f5a0c1edddd is not a release tag"):
        commit_of(repo, DIGEST)


def test_a_clean_tree_gives_its_commit_and_a_change_in_what_ships_is_refused(repo):
    head = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("edited, but it does not ship\n")
    assert clean_commit(repo, [Path("jobs")]) == head
    (repo / "jobs" / "consumer.py").write_text("print('edited')\n")
    (repo / "jobs" / "new.py").write_text("X = 1\n")
    with pytest.raises(GitSourceError) as refused:
        clean_commit(repo, [Path("jobs")])
    assert str(refused.value) == (
        f"the working tree at {repo} differs from commit {head[:12]} in what a release is built from (jobs): "
        "jobs/consumer.py, jobs/new.py; commit or stash the changes, then promote")


def test_outside_a_git_repository_the_git_message_is_kept(tmp_path):
    with pytest.raises(GitSourceError, match="not a git repository"):
        clean_commit(tmp_path, [Path("jobs")])
