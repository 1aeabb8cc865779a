"""Roles as a type: each role's account, project roles, secrets and bucket access, read from one place."""

import dataclasses

import pytest

from infra import catalog, roles
from infra.gcp import identity
from infra.tools import mocks

# Written out by hand from the access model (infra/gcp/secrets.py, storage.py docstrings).
READERS = {
    catalog.INFLUXDB_ADMIN_PASSWORD: {"tsdb"},
    catalog.INFLUXDB_TOKEN: {"tsdb"},
    catalog.GRAFANA_ADMIN_PASSWORD: {"monitoring"},
    catalog.INFLUXDB_WRITE_TOKEN: {"dataproc"},
    catalog.INFLUXDB_READ_TOKEN: {"monitoring"},
    catalog.PAGERDUTY_ROUTING_KEY: {"monitoring"},
    catalog.SMTP_PASSWORD: {"monitoring"},
    catalog.WEBHOOK_URL: {"monitoring"},
    # The broker sets every user's credential; each job logs in as its own user.
    "kafka-password-hydro-admin": {"broker"},
    "kafka-password-hydro-producer": {"broker", "dataproc"},
    "kafka-password-hydro-consumer": {"broker", "dataproc"},
}
BUCKETS = {
    "dataproc-staging": {("dataproc", "roles/storage.objectAdmin")},
    "dataproc-temp": {("dataproc", "roles/storage.objectAdmin")},
    "artifacts": {("dataproc", "roles/storage.objectViewer")},
    "checkpoints": {("dataproc", "roles/storage.objectAdmin")},
    "config": {("monitoring", "roles/storage.objectViewer")},
    "influxdb-backups": {("tsdb-backup", "roles/storage.objectCreator")},
    "broker-agents": {("broker", "roles/storage.objectViewer")},
}


def test_each_secret_is_read_by_exactly_its_roles():
    assert {secret: {r.name for r in roles.readers(secret)} for secret in catalog.SECRETS} == READERS


def test_only_the_influxdb_vm_adds_the_scoped_tokens_versions():
    adders = {secret: [r.name for r in roles.version_adders(secret)] for secret in catalog.SECRETS}
    assert adders == {secret: ["tsdb"] if secret in ("influxdb-write-token", "influxdb-read-token") else []
                      for secret in catalog.SECRETS}


def test_each_bucket_is_granted_to_exactly_its_roles():
    granted = {str(bucket): {(role.name, str(access)) for role, access in roles.bucket_grants(bucket)}
               for bucket in roles.Bucket}
    assert granted == BUCKETS


def test_the_backup_account_is_borrowed_by_the_influxdb_vm_alone():
    assert [(r.name, r.borrowed_by) for r in roles.ACCOUNTS if r.borrowed_by] == [("tsdb-backup", "tsdb")]


def test_a_role_naming_an_unknown_secret_is_refused():
    with pytest.raises(ValueError, match=r"role broker: \['influxdb-tokn'\] are not catalog secrets"):
        dataclasses.replace(roles.BROKER, reads=("influxdb-tokn",))


def test_a_borrowed_account_with_project_roles_is_refused():
    with pytest.raises(ValueError, match="role tsdb-backup: a borrowed account holds no project role"):
        dataclasses.replace(roles.TSDB_BACKUP, project_roles=("roles/storage.admin",))


def test_an_account_borrowed_by_a_role_without_an_account_is_refused():
    orphan = dataclasses.replace(roles.TSDB_BACKUP, borrowed_by="grafana")

    def declare(model):
        identity.ServiceAccounts("identity", identity.ServiceAccountsArgs(
            model.gcp.project, (roles.TSDB, orphan)))
        return {}

    with pytest.raises(Exception, match="role tsdb-backup is borrowed by 'grafana', which has no account"):
        mocks.run_components("dev", declare)


def test_service_accounts_built_directly_expose_emails_that_wait_for_their_grants():
    def declare(model):
        accounts = identity.ServiceAccounts("identity", identity.ServiceAccountsArgs(
            model.gcp.project, roles.ACCOUNTS))
        return {"emails": accounts.emails}

    p = mocks.run_components("dev", declare)
    assert p.outputs["emails"] == {
        name: f"hydro-{name}@hydrostream-dev.iam.gserviceaccount.com"
        for name in ("dataproc", "broker", "tsdb", "monitoring", "tsdb-backup")}
    # One token-creator grant, on the backup account, for the InfluxDB VM's account.
    (borrow,) = p.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert borrow.inputs["member"] == "serviceAccount:hydro-tsdb@hydrostream-dev.iam.gserviceaccount.com"
