"""InfluxDB backups and restores: the tsdb VM's backup unit and timer, what its scripts ask of Google Cloud
(the metadata server, IAM Credentials, Cloud Storage, IAP SSH: stubs that record each call) and what they
refuse, against stubbed docker, influx, curl, gcloud and systemctl.

The round trip itself (tokens, backup, restore into a new bucket, of a lost bucket and in full) runs against a
real InfluxDB in tests/influxdb/test_influxdb_vm.py; Google Cloud cannot run here."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_cloud_init import SCOPED, TEMPLATES, calls, commands, files, refs, run_script, stub, units

from infra import catalog
from infra.model import derive
from infra.paths import PROJECT_DIR
from infra.render import cloud_init
from infra.services.influxdb import InfluxDbSpec
from infra.settings import parse_settings
from infra.tools import mocks, restore_target

RESTORE = PROJECT_DIR / "scripts" / "restore-influxdb.sh"
BACKUP = cloud_init.InfluxBackup("hydrostream-dev-influxdb-backups",
                                 "hydro-tsdb-backup@hydrostream-dev.iam.gserviceaccount.com")
OPERATOR_TOKEN = f"operator-{secrets.token_hex(8)}"
VM_TOKEN = f"ya29.vm-{secrets.token_hex(6)}"
BACKUP_TOKEN = f"ya29.backup-{secrets.token_hex(6)}"
NAME = re.compile(r"influxdb-[0-9]{8}T[0-9]{6}Z")


def tsdb(backup: cloud_init.InfluxBackup | None) -> str:
    spec = InfluxDbSpec(service=catalog.INFLUXDB, org="hydro-farm", bucket="sensors", retention="30d",
                        memory_limit_mb=700)
    return cloud_init.tsdb_cloud_init(spec,
                                      refs(catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN),
                                      scoped_tokens=SCOPED, backup=backup)


# --- the document ------------------------------------------------------------------------------

def test_the_tsdb_vm_backs_up_daily_to_the_bucket_as_the_backup_account():
    document = tsdb(BACKUP)
    found = units(document)
    service = found["hydrostream-influxdb-backup.service"]
    (args,) = commands(service, "ExecStart")
    assert args == ["/bin/bash", "/etc/hydrostream/bin/influxdb-backup.sh", "influxdb",
                    "/run/secrets/hydrostream/influxdb-token",
                    "/mnt/disks/data/influxdb-data/hydrostream-backup",
                    "/var/lib/influxdb2/hydrostream-backup", "hydrostream-dev-influxdb-backups",
                    "hydro-tsdb-backup@hydrostream-dev.iam.gserviceaccount.com",
                    "/mnt/disks/data/node-exporter-textfile"]
    # The folder the backup leaves its metrics in is the one node-exporter reads.
    assert cloud_init.DEFAULT_DATA_DISK.volume_path(catalog.NODE_EXPORTER_TEXTFILE) == args[-1]
    textfile = catalog.NODE_EXPORTER_TEXTFILE
    assert f"--collector.textfile.directory={textfile.container_path}" in catalog.NODE_EXPORTER.command
    assert textfile in catalog.NODE_EXPORTER.volumes
    lines = service.splitlines()
    # Started by its timer each day: not a once-per-boot unit, and it needs the disk and InfluxDB.
    assert "RemainAfterExit=yes" not in lines and "Type=oneshot" in lines
    requires = next(line for line in lines if line.startswith("Requires="))
    assert "hydrostream-data-disk.service" in requires and "hydrostream-influxdb.service" in requires
    timer = found["hydrostream-influxdb-backup.timer"].splitlines()
    assert "OnCalendar=*-*-* 02:17:00 UTC" in timer and "Persistent=true" in timer
    assert "Unit=hydrostream-influxdb-backup.service" in timer
    assert "hydrostream-influxdb-backup.timer" in yaml.safe_load(document)["runcmd"][1]
    shipped = {Path(path).name for path in files(document)}
    assert {"influxdb-backup.sh", "influx-archive.sh", "influxdb-restore.sh", "gce-metadata.sh"} <= shipped
    # The restore command the operator's script runs is the one shipped.
    restore = cloud_init.influxdb_restore_command()
    assert restore[1] in files(document) and restore[2:] == [
        "influxdb", "/run/secrets/hydrostream/influxdb-token",
        "/mnt/disks/data/influxdb-data/hydrostream-restore", "/var/lib/influxdb2/hydrostream-restore"]


def test_the_backup_calendar_is_one_systemd_accepts_once_a_day():
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian: systemd)"
    result = subprocess.run([analyze, "calendar", "--iterations=2", cloud_init.INFLUXDB_BACKUP_CALENDAR],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    times = re.findall(r"\d{4}-\d{2}-\d{2} (\d{2}:\d{2}:\d{2}) UTC", result.stdout)
    assert times[-2:] == ["02:17:00", "02:17:00"]
    days = re.findall(r"(\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2} UTC", result.stdout)[-2:]
    assert days[0] != days[1]


def test_without_a_backup_nothing_is_backed_up():
    document = tsdb(None)
    assert "influxdb-backup" not in document and "influx-archive" not in document


@pytest.mark.parametrize(("bucket", "account", "message"), [
    ("gs://bucket", BACKUP.account_email, "must be a bucket name"),
    (BACKUP.bucket, "someone@example.com", "must be a service account email"),
])
def test_a_bad_backup_target_is_refused(bucket, account, message):
    with pytest.raises(ValueError, match=message):
        cloud_init.InfluxBackup(bucket, account)


# --- the backup script -------------------------------------------------------------------------

def backup_stubs(tmp_path: Path, *, influx_fails: bool = False, manifest: bool = True,
                 minted: str = BACKUP_TOKEN) -> Path:
    """docker exec runs its script here; influx backup writes a manifest and a shard; curl is the
    metadata server, IAM Credentials and the Cloud Storage upload."""
    stubs = tmp_path / "bin"
    stub(stubs, "docker", 'while [[ $1 != bash && $1 != sh ]]; do shift; done\nexec "$@"')
    stub(stubs, "influx", f"""
[[ "$INFLUX_TOKEN" == "{OPERATOR_TOKEN}" ]] || {{ echo "influx: unauthorized" >&2; exit 1; }}
{'echo "influx: backup failed" >&2; exit 1' if influx_fails else ''}
if [[ $1 == backup ]]; then
  mkdir "$2"
  {'echo manifest >"$2/20261202T021700Z.manifest"' if manifest else ''}
  echo shard-data >"$2/20261202T021700Z.s1.tar.gz"
  echo "$2" >"$STUB_DIR/backed-up-into"
fi""")
    # Only the calls that take stdin read it (the metadata call must not eat the POST body).
    stub(stubs, "curl", f"""
case "$*" in
  *computeMetadata*token*) echo '{{"access_token":"{VM_TOKEN}","expires_in":3599}}' ;;
  *iamcredentials.googleapis.com*)
    for arg in "$@"; do [[ "$arg" != /dev/fd/* ]] || cat "$arg" >"$STUB_DIR/mint.header"; done
    cat >"$STUB_DIR/mint.body"
    printf '{{\\n  "accessToken": "{minted}",\\n  "expireTime": "2026-12-02T03:17:00Z"\\n}}\\n' ;;
  *storage.googleapis.com/upload*)
    cat >"$STUB_DIR/upload.header"
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --upload-file) cp "$2" "$STUB_DIR/uploaded.tar.gz" ;;
        https://*) echo "$1" >"$STUB_DIR/upload.url" ;;
      esac
      shift
    done
    echo '{{"name": "x"}}' ;;
  *) exit 22 ;;
esac""")
    return stubs


def run_backup(tmp_path: Path, stubs: Path) -> subprocess.CompletedProcess:
    (tmp_path / "operator-token").write_text(OPERATOR_TOKEN + "\n")
    staging = tmp_path / "data" / "hydrostream-backup"
    (tmp_path / "textfile").mkdir(exist_ok=True)
    # Without a container the host folder and the container folder are one.
    return run_script("influxdb-backup.sh", "influxdb", str(tmp_path / "operator-token"), str(staging),
                      str(staging), BACKUP.bucket, BACKUP.account_email, str(tmp_path / "textfile"),
                      stubs=stubs,
                      env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})


def test_a_backup_is_tarred_and_uploaded_as_the_backup_account_never_overwriting(tmp_path):
    stubs = backup_stubs(tmp_path)
    staging = tmp_path / "data" / "hydrostream-backup"
    staging.mkdir(parents=True)
    (staging / "left-over").write_text("an interrupted run")
    result = run_backup(tmp_path, stubs)
    assert result.returncode == 0, result.stderr
    url = (tmp_path / "upload.url").read_text().strip()
    (name,) = NAME.findall(url)
    assert url == (f"https://storage.googleapis.com/upload/storage/v1/b/{BACKUP.bucket}/o?uploadType=media"
                   f"&ifGenerationMatch=0&name={name}.tar.gz")
    assert f"uploaded gs://{BACKUP.bucket}/{name}.tar.gz" in result.stdout
    # The VM's token mints the backup account's token; only the latter reaches Cloud Storage.
    assert (tmp_path / "mint.header").read_text() == f'header = "Authorization: Bearer {VM_TOKEN}"\n'
    mint = [c for c in calls(tmp_path / "calls.log", "curl") if "iamcredentials" in c]
    assert mint and f"serviceAccounts/{BACKUP.account_email}:generateAccessToken" in mint[0]
    assert "devstorage.read_write" in (tmp_path / "mint.body").read_text()
    upload_header = (tmp_path / "upload.header").read_text().strip()
    assert upload_header == f'header = "Authorization: Bearer {BACKUP_TOKEN}"'
    with tarfile.open(tmp_path / "uploaded.tar.gz") as archive:
        contents = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    assert contents == {f"{name}/20261202T021700Z.manifest": b"manifest\n",
                        f"{name}/20261202T021700Z.s1.tar.gz": b"shard-data\n"}
    assert (tmp_path / "backed-up-into").read_text().strip() == str(staging / name)
    assert not staging.exists()
    everything = (tmp_path / "calls.log").read_text() + result.stdout + result.stderr
    for secret in (OPERATOR_TOKEN, VM_TOKEN, BACKUP_TOKEN):
        assert secret not in everything


def textfile_samples(path: Path) -> dict[str, float]:
    """name -> value of every sample in a textfile-collector file, parsed as node-exporter would."""
    return {sample.name: sample.value for family in text_string_to_metric_families(path.read_text())
            for sample in family.samples}


def test_a_good_backup_leaves_its_time_and_size_for_node_exporter(tmp_path):
    before = time.time()
    result = run_backup(tmp_path, backup_stubs(tmp_path))
    after = time.time()
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "textfile").iterdir()) == ["influxdb-backup.prom"]
    samples = textfile_samples(tmp_path / "textfile" / "influxdb-backup.prom")
    assert set(samples) == {"hydro_influxdb_backup_last_success_timestamp_seconds",
                            "hydro_influxdb_backup_last_size_bytes"}
    assert int(before) <= samples["hydro_influxdb_backup_last_success_timestamp_seconds"] <= after
    assert samples["hydro_influxdb_backup_last_size_bytes"] == (tmp_path / "uploaded.tar.gz").stat().st_size


def test_a_failed_backup_leaves_the_last_good_backup_s_time_alone(tmp_path):
    (tmp_path / "textfile").mkdir()
    earlier = "hydro_influxdb_backup_last_success_timestamp_seconds 1764641820\n"
    (tmp_path / "textfile" / "influxdb-backup.prom").write_text(earlier)
    result = run_backup(tmp_path, backup_stubs(tmp_path, influx_fails=True))
    assert result.returncode != 0
    assert (tmp_path / "textfile" / "influxdb-backup.prom").read_text() == earlier
    assert sorted(p.name for p in (tmp_path / "textfile").iterdir()) == ["influxdb-backup.prom"]


@pytest.mark.parametrize(("case", "options", "message"), [
    ("influx fails", {"influx_fails": True}, "backup failed"),
    ("no manifest", {"manifest": False}, "wrote no manifest"),
    ("no token", {"minted": ""}, "iam.serviceAccounts.getAccessToken"),
])
def test_a_failed_backup_uploads_nothing_and_leaves_no_staging(tmp_path, case, options, message):
    result = run_backup(tmp_path, backup_stubs(tmp_path, **options))
    assert result.returncode != 0, case
    assert message in result.stderr
    assert not (tmp_path / "upload.url").exists()
    assert not (tmp_path / "data" / "hydrostream-backup").exists()


def test_the_backup_script_refuses_bad_arguments(tmp_path):
    stubs = backup_stubs(tmp_path)
    env = {"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)}
    assert run_script("influxdb-backup.sh", "influxdb", "f", "h", "c", stubs=stubs, env=env).returncode == 2
    bad = run_script("influxdb-backup.sh", "influxdb", "f", "h", "c", "gs://b", BACKUP.account_email,
                     str(tmp_path), stubs=stubs, env=env)
    assert bad.returncode == 2 and "not a bucket name" in bad.stderr
    missing = run_script("influxdb-backup.sh", "influxdb", "f", "h", "c", BACKUP.bucket, BACKUP.account_email,
                         str(tmp_path / "no-such-dir"), stubs=stubs, env=env)
    assert missing.returncode == 2 and "no textfile directory" in missing.stderr
    assert not calls(tmp_path / "calls.log", "docker")


# --- the VM's restore script -------------------------------------------------------------------

def backup_archive(name: str = "influxdb-20261202T021700Z", manifest: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in ((f"{name}/20261202T021700Z.manifest", b"m") if manifest else (None, b""),
                             (f"{name}/20261202T021700Z.s1.tar.gz", b"shard")):
            if member is None:
                continue
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def restore_stubs(tmp_path: Path, running: bool = True) -> Path:
    stubs = tmp_path / "bin"
    stub(stubs, "docker", f"""
if [[ $1 == inspect ]]; then echo {'true' if running else 'false'}; exit 0; fi
while [[ $1 != bash && $1 != sh ]]; do shift; done
exec "$@" """)
    stub(stubs, "influx", f"""
[[ "$INFLUX_TOKEN" == "{OPERATOR_TOKEN}" ]] || {{ echo "influx: unauthorized" >&2; exit 1; }}
dir=${{!#}}
ls "$dir" >"$STUB_DIR/restored-from" """)
    stub(stubs, "systemctl", "")
    return stubs


def run_restore(tmp_path: Path, stubs: Path, *args: str, archive: bytes | None = None):
    (tmp_path / "operator-token").write_text(OPERATOR_TOKEN)
    staging = tmp_path / "data" / "hydrostream-restore"
    return subprocess.run(["bash", str(TEMPLATES / "influxdb-restore.sh"), "influxdb",
                           str(tmp_path / "operator-token"), str(staging), str(staging), *args],
                          input=archive if archive is not None else backup_archive(), capture_output=True,
                          timeout=60, env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}",
                                           "STUB_LOG": str(tmp_path / "calls.log"),
                                           "STUB_DIR": str(tmp_path)})


@pytest.mark.parametrize(("case", "args", "archive", "running", "code", "message"), [
    ("bad name", ("latest", "full"), None, True, 2, "not a backup name"),
    ("bad mode", ("influxdb-20261202T021700Z", "merge"), None, True, 2, "usage"),
    ("other archive", ("influxdb-20261202T021700Z", "full"), backup_archive("influxdb-20261101T021700Z"),
     True, 1, "holds no influxdb-20261202T021700Z/*.manifest"),
    ("no manifest", ("influxdb-20261202T021700Z", "full"), backup_archive(manifest=False), True, 1,
     "holds no"),
    ("stopped", ("influxdb-20261202T021700Z", "full"), None, False, 1, "not running"),
])
def test_a_restore_that_cannot_work_changes_nothing(tmp_path, case, args, archive, running, code, message):
    result = run_restore(tmp_path, restore_stubs(tmp_path, running), *args, archive=archive)
    assert result.returncode == code, (case, result.stderr)
    assert message in result.stderr.decode()
    assert calls(tmp_path / "calls.log", "influx") == [] and calls(tmp_path / "calls.log", "systemctl") == []


# --- the operator's script ---------------------------------------------------------------------

def gcloud_stub(tmp_path: Path, archive: bytes, listing: str) -> Path:
    """gcloud storage ls/cp from a fake bucket folder; compute ssh keeps what it received on stdin."""
    stubs = tmp_path / "bin"
    (tmp_path / "backup.tar.gz").write_bytes(archive)
    stub(stubs, "gcloud", f"""
case "$1 $2" in
  "storage ls") printf '{listing}' ;;
  "storage cp") cp "$STUB_DIR/backup.tar.gz" "$4" ;;
  "compute ssh") cat >"$STUB_DIR/ssh-stdin" ;;
  *) exit 1 ;;
esac""")
    return stubs


def run_operator(tmp_path: Path, stubs: Path, *args: str, answer: str = "dev\n"):
    return subprocess.run([str(RESTORE), *args], input=answer, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}",
                               "STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})


def test_the_latest_backup_is_downloaded_checked_confirmed_and_streamed_to_the_vm(tmp_path):
    archive = backup_archive()
    bucket = "gs://hydrostream-dev-influxdb-backups"
    listing = (f"{bucket}/influxdb-20261201T021700Z.tar.gz\\n{bucket}/influxdb-20261202T021700Z.tar.gz\\n"
               f"{bucket}/influxdb-20261130T021700Z.tar.gz\\n")
    stubs = gcloud_stub(tmp_path, archive, listing)
    result = run_operator(tmp_path, stubs, "dev", "latest")
    assert result.returncode == 0, result.stderr
    log = calls(tmp_path / "calls.log", "gcloud")
    assert log[0] == f"gcloud storage ls {bucket}/influxdb-*.tar.gz"
    assert log[1].startswith(f"gcloud storage cp {bucket}/influxdb-20261202T021700Z.tar.gz ")
    target = restore_target.restore_target(derive(parse_settings("dev", mocks.stack_config("dev"))))
    assert log[2] == ("gcloud compute ssh hydrostream-dev-tsdb --project hydrostream-dev --zone "
                      f"{target['zone']} --tunnel-through-iap --command sudo {target['restore_command']} "
                      "influxdb-20261202T021700Z full")
    assert (tmp_path / "ssh-stdin").read_bytes() == archive
    assert "REPLACES every bucket" in result.stdout
    assert "make resubmit STACK=dev JOB=consumer" in result.stdout




def test_a_bucket_restore_asks_for_yes_and_names_both_buckets(tmp_path):
    stubs = gcloud_stub(tmp_path, backup_archive(), "")
    result = run_operator(tmp_path, stubs, "dev", "influxdb-20261202T021700Z.tar.gz", "--into-bucket",
                          "hydro-restored", answer="yes\n")
    assert result.returncode == 0, result.stderr
    ssh = calls(tmp_path / "calls.log", "gcloud")[-1]
    assert ssh.endswith("influxdb-20261202T021700Z bucket hydro hydro-restored")


@pytest.mark.parametrize(("case", "args", "answer", "archive", "message"), [
    ("not confirmed", ("dev", "influxdb-20261202T021700Z.tar.gz"), "prod\n", None, "not confirmed"),
    ("no answer", ("dev", "influxdb-20261202T021700Z.tar.gz"), "", None, "not confirmed"),
    ("other files", ("dev", "gs://elsewhere/influxdb-20261202T021700Z.tar.gz"), "dev\n",
     backup_archive("influxdb-20261101T021700Z"), "entries outside influxdb-20261202T021700Z/"),
    ("not a gzip", ("dev", "influxdb-20261202T021700Z.tar.gz"), "dev\n", b"plain text", "not a readable"),
    ("bad object", ("dev", "gs://b/dump.sql"), "dev\n", None, "is not a backup"),
    ("empty bucket", ("dev", "latest"), "dev\n", None, "holds no backup"),
])
def test_the_operator_script_stops_before_touching_the_vm(tmp_path, case, args, answer, archive, message):
    stubs = gcloud_stub(tmp_path, archive if archive is not None else backup_archive(), "")
    result = run_operator(tmp_path, stubs, *args, answer=answer)
    assert result.returncode == 1, (case, result.stderr)
    assert message in result.stderr
    assert not any(c.startswith("gcloud compute") for c in calls(tmp_path / "calls.log", "gcloud"))


@pytest.mark.parametrize("args", [("local", "latest"), ("qa", "latest"), ("dev",),
                                  ("dev", "latest", "--into", "x")])
def test_the_operator_script_refuses_bad_usage_before_any_gcloud(tmp_path, args):
    stubs = gcloud_stub(tmp_path, b"", "")
    result = run_operator(tmp_path, stubs, *args)
    assert result.returncode == 2 and "usage:" in result.stderr
    assert calls(tmp_path / "calls.log", "gcloud") == []
