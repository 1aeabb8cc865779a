"""The InfluxDB VM's scripts against a real InfluxDB 2.7.12, as the tsdb cloud-init ships them: the scoped
tokens (hydrostream-influxdb-tokens), the daily backup (influxdb-backup.sh) and the operator's restore
(scripts/restore-influxdb.sh, then influxdb-restore.sh on the VM), in a round trip through a lost bucket and
a lost data disk.

Stubbed, because it cannot run here (tests/influxdb/vm/): `docker` (exec runs the command on this machine,
against the real influxd, with the real `influx` CLI), `curl` for the Google APIs (the metadata server's and
IAM Credentials' tokens are placeholders; Cloud Storage and Secret Manager are folders), `gcloud` (storage
ls/cp from that folder; IAP SSH is a local shell with the VM's paths mapped to the test's) and `systemctl`
(runs the unit's ExecStart from the document). The first boot's setup is the fixture's (the `influx setup`
the image's entrypoint runs, with the stacks' values)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from infra import catalog
from infra.model import derive
from infra.paths import PROJECT_DIR
from infra.render import cloud_init
from infra.services.influxdb import influxdb_spec
from infra.settings import parse_settings
from infra.tools import mocks, restore_target
from tests.influxdb.influxdb_server import MEMORY_MB, READ, WRITE, InfluxBucket, InfluxServer, influxdb_server
from tests.influxdb.test_influxdb_server import write
from tests.infra.test_cloud_init import SCOPED, commands, files, refs, secret_id, units

STACK = "dev"
STUBS = Path(__file__).resolve().parent / "vm"
RESTORE = PROJECT_DIR / "scripts" / "restore-influxdb.sh"
TOKENS_UNIT, BACKUP_UNIT = cloud_init.INFLUXDB_TOKENS_UNIT, cloud_init.INFLUXDB_BACKUP_UNIT
OTHER_BUCKET = "hydro-archive"  # a second bucket: a backup holds every bucket


class VM:
    """The tsdb VM's files and units over `root`, its data disk a folder of it, its InfluxDB `server`."""

    def __init__(self, root: Path, document: str, disk: Path):
        self.root, self.document, self.disk = root, document, disk
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for path, content in files(document).items():
            if path.startswith(f"{cloud_init.BIN_DIR}/"):
                (bin_dir / Path(path).name).write_text(content)

    def paths(self, server: InfluxServer) -> dict[str, str]:
        """VM path -> this machine's, the data volume before its disk. No container: the container's
        folders are the host's, and InfluxDB's operator token file is the fixture's."""
        volume = str(self.disk / cloud_init.INFLUXDB_DATA_VOLUME)
        mount = cloud_init.DEFAULT_DATA_DISK.mount_path
        (data,) = (v for v in catalog.INFLUXDB.volumes if v.name == cloud_init.INFLUXDB_DATA_VOLUME)
        (operator,) = (f for f in catalog.INFLUXDB.secret_files if f.secret == catalog.INFLUXDB_TOKEN)
        return {cloud_init.BIN_DIR: str(self.root / "bin"),
                f"{mount}/{cloud_init.INFLUXDB_DATA_VOLUME}": volume, data.container_path: volume,
                mount: str(self.disk), operator.container_path: str(server.workdir / "operator-token")}

    def boot(self, server: InfluxServer) -> None:
        """This VM's paths and units for `server` (the stubs read them from `root`)."""
        mapping = self.paths(server)
        # What the VM's volume unit makes at boot: node-exporter's textfile folder, where backups report.
        textfile = cloud_init.DEFAULT_DATA_DISK.volume_path(catalog.NODE_EXPORTER_TEXTFILE)
        Path(map_paths([textfile], mapping)[0]).mkdir(parents=True, exist_ok=True)
        (self.root / "paths").write_text("".join(f"{vm}\t{here}\n" for vm, here in mapping.items()))
        (self.root / "units").mkdir(exist_ok=True)
        for name, unit in units(self.document).items():
            if name in (TOKENS_UNIT, BACKUP_UNIT):
                (args,) = commands(unit, "ExecStart")
                (self.root / "units" / name).write_text(shlex.join(map_paths(args, mapping)) + "\n")
        self.server = server

    def env(self) -> dict[str, str]:
        cli = self.server.cli_env()
        return {**cli, "PATH": f"{STUBS}{os.pathsep}{cli['PATH']}", "VM_ROOT": str(self.root)}

    def start(self, unit: str) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", "start", unit], env=self.env(), capture_output=True, text=True,
                              timeout=300, check=False)

    def restore(self, *args: str, answer: str) -> subprocess.CompletedProcess:
        """scripts/restore-influxdb.sh STACK ARGS, answering its question."""
        return subprocess.run([str(RESTORE), STACK, *args], input=answer, env=self.env(), capture_output=True,
                              text=True, timeout=300, check=False)

    def published(self, secret: str) -> str:
        """The latest version of a scoped token's secret (a catalog name)."""
        versions = sorted(self.secret(secret).iterdir(), key=lambda p: int(p.name))
        return versions[-1].read_text()

    def versions(self, secret: str) -> int:
        return len(list(self.secret(secret).iterdir()))

    def secret(self, secret: str) -> Path:
        return self.root / "secrets" / secret_id(secret).rsplit("/", 1)[1]

    def backups(self, bucket: str) -> list[str]:
        return sorted(p.name for p in (self.root / "gcs" / bucket).iterdir())


def map_paths(args: list[str], mapping: dict[str, str]) -> list[str]:
    mapped = []
    for arg in args:
        for vm, here in mapping.items():
            arg = arg.replace(vm, here)
        mapped.append(arg)
    return mapped


# The stack's bucket keeps 30 days: older points are refused (422), so these are of the last hour.
HOUR_AGO_S = int(time.time()) // 60 * 60 - 3600


def readings(minute: int, count: int = 5) -> str:
    return "".join(f"sensor_readings,device_id=hp-{i},farm_id=farm-a,zone=bay\\ 1 ph={6 + i / 10} "
                   f"{HOUR_AGO_S + 60 * minute}000000000\n" for i in range(count))


def points(server: InfluxServer, bucket: str, token: str) -> set[tuple[str, str, float]]:
    """(device, time, ph) of every reading of `bucket`, read with `token`."""
    rows = server.query(server.spec.org, f'from(bucket: "{bucket}") |> range(start: 0)', token)
    return {(str(r["device_id"]), str(r["_time"]), float(r["_value"])) for r in rows}  # type: ignore[arg-type]


def write_to(server: InfluxServer, bucket: str, token: str, lines: str) -> int:
    """The HTTP status of writing `lines` into `bucket` with `token`."""
    return write(InfluxBucket(server, server.spec.org, bucket, token=token, read_token=token), token, lines)


def tsdb_document() -> tuple[str, str]:
    """The dev stack's tsdb user-data as far as these scripts go, and its backup bucket."""
    settings = parse_settings(STACK, mocks.stack_config(STACK))
    target = restore_target.restore_target(derive(settings))
    backup = cloud_init.InfluxBackup(target["backup_bucket"],
                                     f"hydro-tsdb-backup@{target['project']}.iam.gserviceaccount.com")
    spec = influxdb_spec(settings.influxdb, MEMORY_MB)
    return cloud_init.tsdb_cloud_init(spec, refs(catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN),
                                      scoped_tokens=SCOPED, backup=backup), target["backup_bucket"]


def test_tokens_backup_and_restores_of_a_lost_bucket_and_a_lost_disk(influxdb_binaries, tmp_path):
    document, backup_bucket = tsdb_document()
    vm = VM(tmp_path / "vm", document, tmp_path / "disk-1")
    volume = tmp_path / "disk-1" / cloud_init.INFLUXDB_DATA_VOLUME
    volume.mkdir(parents=True)
    outputs: list[subprocess.CompletedProcess] = []
    with influxdb_server(influxdb_binaries, volume) as server:
        vm.boot(server)
        org, bucket = server.spec.org, server.spec.bucket
        # First boot, then a reboot: each scoped token made once, published once, found again by description.
        for _boot in range(2):
            done = vm.start(TOKENS_UNIT)
            assert done.returncode == 0, done.stderr
            outputs.append(done)
        write_token, read_token = vm.published(WRITE.secret), vm.published(READ.secret)
        assert vm.versions(WRITE.secret) == 1 == vm.versions(READ.secret)
        descriptions = [a["description"] for a in json.loads(server.cli("auth", "list", "--json"))]
        assert descriptions.count(WRITE.description) == 1 == descriptions.count(READ.description)

        server.cli("bucket", "create", "--org", org, "--name", OTHER_BUCKET, "--retention", "0")
        assert write_to(server, bucket, write_token, readings(0)) == 204
        assert write_to(server, OTHER_BUCKET, server.operator_token, readings(1, count=3)) == 204
        assert write_to(server, OTHER_BUCKET, write_token, readings(2)) == 403
        backed_up = points(server, bucket, read_token)
        other = points(server, OTHER_BUCKET, server.operator_token)
        assert len(backed_up) == 5 and len(other) == 3

        done = vm.start(BACKUP_UNIT)
        assert done.returncode == 0, done.stderr
        outputs.append(done)
        (archive,) = vm.backups(backup_bucket)
        assert (tmp_path / "disk-1" / "node-exporter-textfile" / "influxdb-backup.prom").exists()
        assert not (volume / cloud_init.INFLUXDB_BACKUP_FOLDER).exists()
        assert write_to(server, bucket, write_token, readings(3)) == 204  # after the backup

        # Into a new bucket: the backup's points there, nothing else changes.
        done = vm.restore("latest", "--into-bucket", "hydro-restored", answer="yes\n")
        assert done.returncode == 0, done.stderr
        assert points(server, "hydro-restored", server.operator_token) == backed_up
        assert len(points(server, bucket, read_token)) == 10
        assert vm.versions(WRITE.secret) == 1 == vm.versions(READ.secret)
        assert "make resubmit" not in done.stdout
        outputs.append(done)

        # Into an existing bucket: influx restore refuses, nothing changes.
        done = vm.restore("latest", "--into-bucket", bucket, answer="yes\n")
        assert done.returncode == 1 and f"bucket with name {bucket} already exists" in done.stderr
        assert len(points(server, bucket, read_token)) == 10

        # The bucket is lost: restored under its name, it has a new id and new scoped tokens.
        server.cli("bucket", "delete", "--org", org, "--name", bucket)
        done = vm.restore("latest", "--into-bucket", bucket, answer="yes\n")
        assert done.returncode == 0, done.stderr
        assert f"make resubmit STACK={STACK} JOB=consumer" in done.stdout
        outputs.append(done)
        new_write, new_read = vm.published(WRITE.secret), vm.published(READ.secret)
        assert points(server, bucket, new_read) == backed_up
        assert write_to(server, bucket, new_write, readings(4)) == 204
        assert write_to(server, bucket, write_token, readings(4)) in (401, 403)
        assert write_to(server, bucket, new_read, readings(4)) == 403

    # The data disk is lost: a new VM sets InfluxDB up again with the operator token of Secret Manager,
    # makes new scoped tokens, then the full restore brings back every bucket and the backup's tokens.
    operator_token = server.operator_token
    volume = tmp_path / "disk-2" / cloud_init.INFLUXDB_DATA_VOLUME
    volume.mkdir(parents=True)
    vm.disk = tmp_path / "disk-2"
    with influxdb_server(influxdb_binaries, volume, operator_token=operator_token) as server:
        vm.boot(server)
        assert vm.start(TOKENS_UNIT).returncode == 0
        fresh_write = vm.published(WRITE.secret)
        assert fresh_write not in (write_token, new_write)
        assert points(server, bucket, vm.published(READ.secret)) == set()

        done = vm.restore("latest", answer=f"{STACK}\n")
        assert done.returncode == 0, done.stderr
        outputs.append(done)
        buckets = {b["name"] for b in json.loads(server.cli("bucket", "list", "--json"))}
        assert {b for b in buckets if not b.startswith("_")} == {bucket, OTHER_BUCKET}
        assert vm.published(WRITE.secret) == write_token and vm.published(READ.secret) == read_token
        assert points(server, bucket, read_token) == backed_up
        assert points(server, OTHER_BUCKET, operator_token) == other
        assert write_to(server, bucket, write_token, readings(5)) == 204
        assert write_to(server, bucket, fresh_write, readings(5)) in (401, 403)
        assert vm.backups(backup_bucket) == [archive]
    # The operator token stays in its file: no script prints it.
    for done in outputs:
        assert operator_token not in done.stdout + done.stderr
