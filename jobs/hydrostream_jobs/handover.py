"""Release handover: where a new release's consumer starts reading, from the previous release's checkpoint.

Each release has its own checkpoint (`<root>/<release>/consumer`). A new release's consumer whose
checkpoint has no committed batch yet starts from the Kafka timestamp `start = P - window - watermark`,
where P, the event-time position of the release that ran last, is read from its last committed batch:
the watermark after that batch plus the watermark delay (= the largest event time it had seen), never
later than the batch's own wall-clock time (a reading from the future must not move the start past
data nobody has read). Windows that begin before `start` are only partly re-read, and the previous
release already wrote them whole, so the consumer does not write them (`complete_from_ms`).
The decision is recorded beside the checkpoint, so a restart before or after the first commit keeps it.
Releases are taken newest first by their newest planned batch (committed or not). One with no
event-time position (stopped before its first commit, or it read only malformed messages) that was
itself handed over still stands at its own start (its record); without either it tells nothing and the
one before it decides. Only when none knows a position does the start fall back to `--starting-offsets`
(what those releases did too), and the reason names them, so a replay from the start is never silent.
docs/jobs.md ("Release handover") states the bound and its assumptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from hydrostream_jobs import durations

# Beside the query's checkpoint folder, inside `--checkpoint-location` (Spark owns the query folder).
RECORD_NAME = "handover.json"



class HandoverError(ValueError):
    """A checkpoint that does not look like Spark's, or paths that cannot be handed over."""


class CheckpointFiles(Protocol):
    """The few file operations the handover needs (Hadoop's FileSystem on a cluster, so gs:// works)."""

    def exists(self, path: str) -> bool: ...
    def list_dirs(self, path: str) -> list[str]: ...  # names of the subfolders
    def list_names(self, path: str) -> list[str]: ...  # names of the files
    def read_text(self, path: str) -> str: ...
    def write_text(self, path: str, text: str) -> None: ...


@dataclass(frozen=True)
class CommittedBatch:
    """The last committed micro-batch of one query checkpoint."""

    checkpoint: str
    batch_id: int
    batch_timestamp_ms: int  # wall clock when Spark planned the batch (offsets/<n>)
    next_watermark_ms: int  # event-time watermark after the batch (commits/<n>); 0: none yet


@dataclass(frozen=True)
class StartPosition:
    """Where the consumer's Kafka source starts on a fresh checkpoint, and why."""

    starting_timestamp_ms: int | None  # None: `--starting-offsets` (earliest by default)
    reason: str
    previous: str | None = None  # the checkpoint handed over from

    @property
    def complete_from_ms(self) -> int | None:
        """Windows starting before this instant are not written (they would be partial)."""
        return self.starting_timestamp_ms

    def describe(self) -> str:
        """One log line: what was chosen and why."""
        if self.starting_timestamp_ms is None:
            return f"handover: no starting timestamp: {self.reason}"
        instant = datetime.fromtimestamp(self.starting_timestamp_ms / 1000, tz=timezone.utc).isoformat()
        return (f"handover: Kafka startingTimestamp={self.starting_timestamp_ms} ({instant}) "
                f"from {self.previous}: {self.reason}")

    def to_json(self) -> str:
        """The record kept beside the checkpoint."""
        return json.dumps({"starting_timestamp_ms": self.starting_timestamp_ms, "reason": self.reason,
                           "previous": self.previous}, sort_keys=True)

    @staticmethod
    def from_json(text: str, path: str) -> StartPosition:
        """Read a record written by `to_json`."""
        try:
            data = json.loads(text)
            start = data["starting_timestamp_ms"]
            if start is not None and not isinstance(start, int):
                raise TypeError(f"starting_timestamp_ms is {start!r}")
            return StartPosition(start, str(data["reason"]), data.get("previous"))
        except (ValueError, KeyError, TypeError) as error:
            raise HandoverError(f"{path} is not a handover record: {error}") from error


def interval_ms(interval: str) -> int:
    """'5 minutes' (the cli's Spark interval text) -> 300000."""
    try:
        return durations.interval_ms(interval)
    except durations.DurationError as error:
        raise HandoverError(str(error)) from None


def _metadata(text: str, path: str) -> dict:
    lines = text.splitlines()
    if len(lines) < 2 or lines[0] != "v1":
        raise HandoverError(f"{path} is not a Spark v1 checkpoint log entry (first line {lines[:1]})")
    try:
        metadata = json.loads(lines[1])
    except ValueError as error:
        raise HandoverError(f"{path}: second line is not JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise HandoverError(f"{path}: second line is not a JSON object")
    return metadata


def _millis(metadata: dict, key: str, path: str, default: int | None = None) -> int:
    value = metadata.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise HandoverError(f"{path}: {key} is {value!r}, not a non-negative integer")
    return value


def parse_offsets_entry(text: str, path: str = "offsets entry") -> int:
    """batchTimestampMs of an `offsets/<n>` file (line 1 `v1`, line 2 the batch's JSON metadata)."""
    return _millis(_metadata(text, path), "batchTimestampMs", path)


def parse_commit_entry(text: str, path: str = "commit entry") -> int:
    """nextBatchWatermarkMs of a `commits/<n>` file (absent in a commit without watermark: 0)."""
    return _millis(_metadata(text, path), "nextBatchWatermarkMs", path, default=0)


def batch_ids(names: list[str]) -> list[int]:
    """The batch numbers among a log folder's names (skipping `.0.crc`, temporary files)."""
    return sorted(int(name) for name in names if name.isdigit())


def last_committed_batch(files: CheckpointFiles, checkpoint: str) -> CommittedBatch | None:
    """The newest batch whose commit exists in a query checkpoint, or None (nothing committed)."""
    commits = f"{checkpoint}/commits"
    if not files.exists(commits):
        return None
    committed = batch_ids(files.list_names(commits))
    if not committed:
        return None
    batch = committed[-1]
    offsets = f"{checkpoint}/offsets/{batch}"
    commit = f"{commits}/{batch}"
    return CommittedBatch(
        checkpoint=checkpoint,
        batch_id=batch,
        batch_timestamp_ms=parse_offsets_entry(files.read_text(offsets), offsets),
        next_watermark_ms=parse_commit_entry(files.read_text(commit), commit),
    )


def start_position(previous: CommittedBatch | None, window_ms: int, watermark_ms: int) -> StartPosition:
    """Where to start after `previous`: its event-time position less one window and the watermark."""
    if previous is None:
        return StartPosition(None, "no earlier release has a committed batch")
    if previous.next_watermark_ms == 0:
        return StartPosition(None, f"{previous.checkpoint} batch {previous.batch_id} has no event-time "
                                   f"watermark yet (no valid reading seen)", previous.checkpoint)
    seen = previous.next_watermark_ms + watermark_ms
    position = min(seen, previous.batch_timestamp_ms)
    start = position - window_ms - watermark_ms
    if start <= 0:
        return StartPosition(None, f"position {position} less window and watermark is before the epoch",
                             previous.checkpoint)
    capped = " (capped by the batch's wall clock)" if position < seen else ""
    return StartPosition(
        start,
        f"batch {previous.batch_id}: watermark {previous.next_watermark_ms} + watermark {watermark_ms} = "
        f"event-time position {seen}{capped}; less window {window_ms} and watermark {watermark_ms}",
        previous.checkpoint,
    )


@dataclass(frozen=True)
class ReleaseCheckpoint:
    """What an earlier release's query checkpoint says about where that release stood."""

    checkpoint: str
    last_planned_ms: int  # batchTimestampMs of its newest offsets entry, committed or not
    committed: CommittedBatch | None
    record: StartPosition | None  # its own handover decision, if it was handed over


def record_path(query_checkpoint: str) -> str:
    """The handover record of a query checkpoint: beside it, in the release's checkpoint location."""
    return f"{query_checkpoint.rstrip('/').rpartition('/')[0]}/{RECORD_NAME}"


def read_record(files: CheckpointFiles, query_checkpoint: str) -> StartPosition | None:
    """The handover decision recorded beside a query checkpoint, if one was made."""
    record = record_path(query_checkpoint)
    return StartPosition.from_json(files.read_text(record), record) if files.exists(record) else None


def read_release(files: CheckpointFiles, checkpoint: str) -> ReleaseCheckpoint | None:
    """An earlier release's state, or None when it never planned a batch (it read nothing)."""
    offsets = f"{checkpoint}/offsets"
    planned = batch_ids(files.list_names(offsets)) if files.exists(offsets) else []
    if not planned:
        return None
    newest_offsets = f"{offsets}/{planned[-1]}"
    return ReleaseCheckpoint(
        checkpoint=checkpoint,
        last_planned_ms=parse_offsets_entry(files.read_text(newest_offsets), newest_offsets),
        committed=last_committed_batch(files, checkpoint),
        record=read_record(files, checkpoint),
    )


def hand_over(releases: list[ReleaseCheckpoint], window_ms: int, watermark_ms: int) -> StartPosition:
    """The start after the latest release that knows where it stood: its position, else its own start."""
    for release in sorted(releases, key=lambda r: (r.last_planned_ms, r.checkpoint), reverse=True):
        committed = release.committed
        if committed is not None and committed.next_watermark_ms > 0:
            return start_position(committed, window_ms, watermark_ms)
        if release.record is not None and release.record.starting_timestamp_ms is not None:
            # Nothing committed with a watermark since its handover: it had not moved past its start.
            state = ("committed no batch" if committed is None
                     else f"has no watermark at batch {committed.batch_id} (no valid reading seen)")
            return StartPosition(
                release.record.starting_timestamp_ms,
                f"{release.checkpoint} {state} since it was handed over: it stood at its own start "
                f"(handed over from {release.record.previous})",
                release.checkpoint,
            )
    if not releases:
        return StartPosition(None, "no earlier release has planned a batch")
    names = ", ".join(sorted(r.checkpoint for r in releases))
    return StartPosition(None, f"no earlier release committed an event-time position or was handed one "
                               f"({names}): starting at --starting-offsets as they did")


@dataclass(frozen=True)
class CheckpointLayout:
    """A consumer's checkpoint location below the handover root: `<root>/<release>[/<rest>]`."""

    root: str
    release: str
    rest: str  # below the release folder ('' when the location is the release folder itself)

    @staticmethod
    def of(root: str, checkpoint_location: str) -> CheckpointLayout:
        """Split a checkpoint location into the root, its release folder and the path every release shares."""
        base = root.rstrip("/")
        location = checkpoint_location.rstrip("/")
        if base and location != base and not location.startswith(base + "/"):
            raise HandoverError(f"the checkpoint location {checkpoint_location} is not below the handover "
                                f"root {root}")
        release, _, rest = location[len(base) + 1:].partition("/")
        if not base or not release:
            raise HandoverError(f"the checkpoint location {checkpoint_location} needs a release folder: "
                                f"{base}/<release>/...")
        return CheckpointLayout(base, release, rest)

    def query_checkpoint(self, release: str, query: str) -> str:
        """The query's checkpoint of `release` (this layout's own release or another)."""
        return "/".join(part for part in (self.root, release, self.rest, query) if part)

    def siblings(self, files: CheckpointFiles, query: str) -> list[str]:
        """The query's checkpoint of every other release under the root that has one."""
        if not files.exists(self.root):
            return []
        paths = [self.query_checkpoint(name, query) for name in sorted(files.list_dirs(self.root))
                 if name != self.release]
        return [path for path in paths if files.exists(path)]


def decide(files: CheckpointFiles, root: str, checkpoint_location: str, query: str,
           window: str, watermark: str) -> StartPosition:
    """The consumer's start: its record if any, its own checkpoint if it has one, else a handover."""
    location = checkpoint_location.rstrip("/")
    own = f"{location}/{query}"
    recorded = read_record(files, own)
    if recorded is not None:
        return recorded
    if last_committed_batch(files, own) is not None:
        # Started before without a handover: Spark resumes from the checkpoint; nothing to record.
        return StartPosition(None, f"{own} has committed batches: it resumes from its own checkpoint")
    releases = [release for path in CheckpointLayout.of(root, location).siblings(files, query)
                if (release := read_release(files, path)) is not None]
    position = hand_over(releases, interval_ms(window), interval_ms(watermark))
    files.write_text(record_path(own), position.to_json())
    return position


class HadoopFiles:
    """CheckpointFiles over Hadoop's FileSystem in the Spark driver's JVM (local paths and gs:// alike)."""

    def __init__(self, spark) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        hadoop_path = self._jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(self._conf), hadoop_path

    def exists(self, path: str) -> bool:
        fs, hadoop_path = self._fs(path)
        return bool(fs.exists(hadoop_path))

    def _list(self, path: str, dirs: bool) -> list:
        fs, hadoop_path = self._fs(path)
        return [status for status in fs.listStatus(hadoop_path) if bool(status.isDirectory()) == dirs]

    def list_dirs(self, path: str) -> list[str]:
        return [status.getPath().getName() for status in self._list(path, dirs=True)]

    def list_names(self, path: str) -> list[str]:
        return [status.getPath().getName() for status in self._list(path, dirs=False)]

    def read_text(self, path: str) -> str:
        fs, hadoop_path = self._fs(path)
        stream = fs.open(hadoop_path)
        try:
            reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
            return "\n".join(iter(reader.readLine, None))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        fs, hadoop_path = self._fs(path)
        stream = fs.create(hadoop_path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
