"""The stacks' backup and restore script (infra/render/templates/influx-archive.sh, which the InfluxDB VM runs
inside its container) against a real InfluxDB 2.7.12: a backup restores into a new bucket, and a full restore
brings back the data and the tokens of the backup's moment."""

from __future__ import annotations

import subprocess
import urllib.error

import pytest

from tests.influxdb.influxdb_server import ROOT, InfluxBucket, InfluxServer, influxdb_server
from tests.influxdb.test_influxdb_server import write

ARCHIVE_SCRIPT = ROOT / "infra" / "render" / "templates" / "influx-archive.sh"


def archive(server: InfluxServer, *args: str) -> subprocess.CompletedProcess:
    """influx-archive.sh with the operator token file, the `influx` CLI on PATH, pointed at `server`."""
    return subprocess.run(["bash", str(ARCHIVE_SCRIPT), str(server.workdir / "operator-token"), *args],
                          env=server.cli_env(), capture_output=True, text=True, timeout=300, check=False)


def lines(minute: int, count: int = 5) -> str:
    return "".join(f"sensor_readings,device_id=hp-{i},farm_id=farm-a,zone=bay\\ 1 ph={6 + i / 10} "
                   f"{1767225600 + 60 * minute}000000000\n" for i in range(count))


def test_a_backup_restores_one_bucket_into_a_new_bucket(influxd, influxdb, tmp_path):
    assert write(influxdb, influxdb.token, lines(0)) == 204
    before = influxdb.measurement("sensor_readings")
    assert len(before) == 5
    done = archive(influxd, "backup", str(tmp_path / "backup" / "influxdb-20261207T000000Z"))
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "backup" / "influxdb-20261207T000000Z").glob("*.manifest"))
    # A second backup into the same folder is refused: two backups never mix.
    again = archive(influxd, "backup", str(tmp_path / "backup" / "influxdb-20261207T000000Z"))
    assert again.returncode == 1 and "refusing" in again.stderr

    restored = f"{influxdb.bucket}-restored"
    done = archive(influxd, "restore-bucket", str(tmp_path / "backup" / "influxdb-20261207T000000Z"),
                   influxdb.bucket, restored)
    assert done.returncode == 0, done.stderr
    copy = InfluxBucket(influxd, influxdb.org, restored, token="", read_token=influxd.operator_token)
    assert copy.measurement("sensor_readings") == before
    assert influxdb.measurement("sensor_readings") == before


def test_a_full_restore_brings_back_the_data_and_tokens_of_the_backup(influxdb_binaries, tmp_path):
    """On a server of its own: a full restore replaces every bucket and token of the session's server."""
    (tmp_path / "server").mkdir()
    with influxdb_server(influxdb_binaries, tmp_path / "server") as server:
        kept = server.new_bucket()
        assert write(kept, kept.token, lines(0)) == 204
        before = kept.measurement("sensor_readings")
        backup = str(tmp_path / "influxdb-20261207T000000Z")
        done = archive(server, "backup", backup)
        assert done.returncode == 0, done.stderr

        assert write(kept, kept.token, lines(1)) == 204
        later = server.new_bucket()
        assert len(kept.measurement("sensor_readings")) == 10

        done = archive(server, "restore-full", backup)
        assert done.returncode == 0, done.stderr
        # The backup's points only, read with the backup's read token: metadata came back with the data.
        assert kept.measurement("sensor_readings") == before
        assert write(kept, kept.token, lines(2)) == 204
        # Tokens made after the backup are gone with the bucket they were for.
        with pytest.raises(urllib.error.HTTPError):
            later.measurement("sensor_readings")
