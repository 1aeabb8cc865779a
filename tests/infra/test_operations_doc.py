"""docs/operations.md stays true to the code: retention figures, times, units and scripts it names."""

import re

import pytest

from infra import catalog
from infra.gcp import service_vm, storage
from infra.paths import PROJECT_DIR
from infra.render import cloud_init
from infra.roles import Bucket
from infra.services.influxdb import InfluxDbSpec
from infra.settings import PROD_MIN_BACKUP_DAYS, parse_settings
from infra.tools import mocks
from tests.infra.conftest import GCP_STACKS

DOC = (PROJECT_DIR / "docs" / "operations.md").read_text()


def table_row(label: str) -> list[str]:
    """The cells after the first of the table row whose first cell starts with `label`."""
    (row,) = [line for line in DOC.splitlines() if line.startswith(f"| {label}")]
    return [cell.strip() for cell in row.strip("|").split("|")][1:]


@pytest.mark.parametrize(("label", "key"), [("kept (", "snapshot_retention_days"),
                                            ("backups kept (", "influxdb_retention_days")])
def test_the_retention_tables_give_each_stacks_setting(label, key):
    cells = table_row(label)
    for stack, cell in zip(GCP_STACKS, cells, strict=True):
        days = getattr(parse_settings(stack, mocks.stack_config(stack)).backups, key)
        assert re.match(rf"{days} days\b", cell), (stack, cell)
    assert f"settings refuse less than {PROD_MIN_BACKUP_DAYS}" in cells[2]


def test_the_times_are_the_programs():
    assert f"daily, starting {service_vm.SNAPSHOT_START_TIME} UTC" in DOC
    hour, minute = re.search(r"(\d\d):(\d\d):00 UTC", cloud_init.INFLUXDB_BACKUP_CALENDAR).groups()
    assert f"daily at {hour}:{minute} UTC" in DOC
    assert f"expire {storage.NONCURRENT_BACKUP_DAYS} days after they became noncurrent" in DOC


def test_every_unit_and_script_it_names_exists():
    tsdb = cloud_init.tsdb_cloud_init(
        InfluxDbSpec(service=catalog.INFLUXDB, org="o", bucket="b", retention="30d", memory_limit_mb=700),
        [cloud_init.SecretRef(s, f"projects/p/secrets/{s}")
                               for s in (catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN)],
        scoped_tokens=[cloud_init.SecretRef(t.secret, f"projects/p/secrets/{t.secret}")
                       for t in catalog.SCOPED_TOKENS],
        backup=cloud_init.InfluxBackup("p-influxdb-backups", "hydro-tsdb-backup@p.iam.gserviceaccount.com"))
    known = set(re.findall(r"hydrostream-[a-z-]+\.(?:service|timer)", tsdb))
    known |= {cloud_init.unit_name(service) for service in catalog.SERVICES.values()}
    # The monitoring VM's config units (HydroConfigBundleRefused's runbook names them).
    known |= {cloud_init.CONFIG_UNIT, cloud_init.CONFIG_REFRESH_UNIT}
    # The broker's topics and users unit (the Kafka password rotation names it).
    known.add(cloud_init.KAFKA_TOPICS_UNIT)
    named = set(re.findall(r"hydrostream-[a-z-]+\.(?:service|timer)", DOC))
    assert named and named <= known, named - known
    for script in re.findall(r"scripts/[a-z-]+\.sh", DOC):
        assert (PROJECT_DIR / script).is_file(), script
    assert f"{Bucket.BACKUPS}" in DOC and "hydro-tsdb-backup@" in DOC
    for section in ("Replication", "Snapshots", "Backups and restore", "Secrets rotation", "Alerts"):
        assert f"\n## {section}\n" in DOC


def test_the_rotation_table_names_each_secret_s_readers_and_their_units():
    rows = {cells[0].strip("`"): cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in DOC.splitlines()
             if re.match(r"\| `[a-z-]+` \| ", line))}
    assert set(rows) >= set(catalog.SECRETS)
    for secret in catalog.SECRETS:
        _, vm, restart = rows[secret]
        readers = [s for s in catalog.SERVICES.values() if any(f.secret == secret for f in s.secret_files)]
        if not readers:  # read by the Dataproc job, not by a unit
            assert vm == "Dataproc" and "make resubmit" in restart, secret
        for service in readers:
            assert vm == service.role and f"`{cloud_init.unit_name(service)}`" in restart, secret
