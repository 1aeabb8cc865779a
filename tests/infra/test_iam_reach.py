"""Permissions, not role names: every IAM grant of a plan expanded into the permissions it carries, and
what each service account can reach with them held against infra/roles.py.

A predefined role's permissions come from the pinned table `predefined_roles.yaml` (its source and date
are in the file); a custom role's from the plan's own IAMCustomRole resources. A grant on the project
reaches every bucket, secret and service account of the project; a grant on a bucket, a secret or a
service account reaches that one. An account also reaches what every account whose tokens it may mint
reaches. The verdict: each account reaches exactly the buckets and secrets its role lists (with at most
the permissions of the access listed), and only a borrower mints only its borrowed account's access
tokens. A role the table does not hold is refused, not guessed.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from infra import catalog, roles
from infra.gcp import secrets as gcp_secrets
from infra.gcp import storage
from infra.tools import mocks

TABLE = Path(__file__).with_name("predefined_roles.yaml")
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
PROJECT_GRANTS = frozenset({"gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding"})
BUCKET_GRANTS = frozenset({"gcp:storage/bucketIAMMember:BucketIAMMember",
                           "gcp:storage/bucketIAMBinding:BucketIAMBinding"})
SECRET_GRANTS = frozenset({"gcp:secretmanager/secretIamMember:SecretIamMember",
                           "gcp:secretmanager/secretIamBinding:SecretIamBinding"})
ACCOUNT_GRANTS = frozenset({"gcp:serviceaccount/iAMMember:IAMMember",
                            "gcp:serviceaccount/iAMBinding:IAMBinding"})
# Metadata reads reach no object or value; every other permission of the service does.
BUCKET_METADATA = frozenset({"storage.buckets.get", "storage.buckets.list"})
SECRET_METADATA = frozenset({"secretmanager.secrets.get", "secretmanager.secrets.list",
                             "secretmanager.versions.get", "secretmanager.versions.list",
                             "secretmanager.locations.get", "secretmanager.locations.list"})
# Acting as another account: each of these lets the holder use that account's rights.
IMPERSONATION = frozenset({
    "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt", "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.actAs", "iam.serviceAccountKeys.create",
})
MINTING = frozenset({"iam.serviceAccounts.getAccessToken"})
_MEMBER = re.compile(r"serviceAccount:hydro-([a-z-]+)@[^@]+\.iam\.gserviceaccount\.com")


def predefined_roles(path: Path = TABLE) -> dict[str, frozenset[str]]:
    """Predefined role -> its permissions, from the pinned table."""
    raw = yaml.safe_load(path.read_text())
    assert raw["recorded"] and raw["source"].startswith("https://"), f"{path.name}: source and date"
    return {name: frozenset(entry["permissions"]) for name, entry in raw["roles"].items()}


PREDEFINED = predefined_roles()


@dataclasses.dataclass(frozen=True)
class Reach:
    """What one grant lets an account do: `kind` bucket/secret/account, the target's name, permissions."""

    account: str
    kind: str
    target: str
    permissions: frozenset[str]
    grant: str


def role_permissions(p: mocks.Plan) -> dict[str, frozenset[str]]:
    """Every role a grant of this plan may name: the pinned predefined ones and the plan's custom ones."""
    project = p.settings.gcp.project
    custom = {f"projects/{project}/roles/{r.inputs['roleId']}": frozenset(r.inputs["permissions"])
              for r in p.of_type(CUSTOM_ROLE)}
    return {**PREDEFINED, **custom}


def targets(p: mocks.Plan) -> dict[str, set[str]]:
    """The plan's buckets, secrets and accounts, by the name a grant on one of them gives."""
    project = p.settings.gcp.project
    return {
        "bucket": {r.inputs["name"] for r in p.of_type("gcp:storage/bucket:Bucket")},
        "secret": {r.inputs["secretId"] for r in p.of_type("gcp:secretmanager/secret:Secret")},
        "account": {f"projects/{project}/serviceAccounts/{r.inputs['accountId']}@{project}"
                    ".iam.gserviceaccount.com" for r in p.of_type("gcp:serviceaccount/account:Account")},
    }


def reaches(p: mocks.Plan) -> tuple[list[Reach], list[str]]:
    """Every (account, target, permissions) the plan's grants give, and the grants that cannot be judged."""
    known = role_permissions(p)
    everything = targets(p)
    found: list[Reach] = []
    problems: list[str] = []
    for grant in p.resources:
        if grant.type in PROJECT_GRANTS:
            scopes = [(kind, target) for kind, names in everything.items() for target in sorted(names)]
        elif grant.type in BUCKET_GRANTS:
            scopes = [("bucket", grant.inputs.get("bucket"))]
        elif grant.type in SECRET_GRANTS:
            scopes = [("secret", grant.inputs.get("secretId"))]
        elif grant.type in ACCOUNT_GRANTS:
            scopes = [("account", grant.inputs.get("serviceAccountId"))]
        else:
            continue
        role = grant.inputs.get("role", "")
        if role not in known:
            problems.append(f"{grant.name}: role {role} is neither in {TABLE.name} nor a custom role of the "
                            f"plan: record its permissions before granting it")
            continue
        for member in grant.inputs.get("members") or [grant.inputs.get("member", "")]:
            account = _MEMBER.fullmatch(member)
            if account is None:
                problems.append(f"{grant.name}: {member} is none of the stack's accounts")
                continue
            found += [Reach(account.group(1), kind, target, known[role], grant.name)
                      for kind, target in scopes]
    return found, problems


def data_permissions(kind: str, permissions: frozenset[str]) -> frozenset[str]:
    """The permissions that reach a target's data: objects of a bucket, values of a secret, or acting as
    an account."""
    if kind == "bucket":
        return frozenset(x for x in permissions if x.startswith("storage.") and x not in BUCKET_METADATA)
    if kind == "secret":
        return frozenset(x for x in permissions
                         if x.startswith("secretmanager.") and x not in SECRET_METADATA)
    return permissions & IMPERSONATION


def allowed(p: mocks.Plan, accounts: tuple[roles.Role, ...]) -> dict[tuple[str, str, str], frozenset[str]]:
    """(account, kind, target) -> the data permissions roles.py lets the account hold on it, directly."""
    project = p.settings.gcp.project
    result: dict[tuple[str, str, str], frozenset[str]] = defaultdict(frozenset)
    for role in accounts:
        for purpose, access in role.buckets:
            key = (role.name, "bucket", storage.bucket_name(project, purpose))
            result[key] |= data_permissions("bucket", PREDEFINED[str(access)])
        for secret in role.reads:
            result[(role.name, "secret", gcp_secrets.secret_id(secret))] |= data_permissions(
                "secret", PREDEFINED[gcp_secrets.SECRET_ACCESSOR])
        for secret in role.adds_versions:
            result[(role.name, "secret", gcp_secrets.secret_id(secret))] |= data_permissions(
                "secret", PREDEFINED[gcp_secrets.VERSION_ADDER])
        if role.borrowed_by is not None:
            email = f"hydro-{role.name}@{project}.iam.gserviceaccount.com"
            result[(role.borrowed_by, "account", f"projects/{project}/serviceAccounts/{email}")] |= MINTING
    return result


def reach_violations(p: mocks.Plan, accounts: tuple[roles.Role, ...] | None = None) -> list[str]:
    """What any account can do with a bucket's objects, a secret's values or another account beyond what
    roles.py lists for it (the borrowed accounts' rights counted for their borrowers too)."""
    accounts = roles.ACCOUNTS if accounts is None else accounts
    found, problems = reaches(p)
    held: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    via: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for reach in found:
        data = data_permissions(reach.kind, reach.permissions)
        if data:
            key = (reach.account, reach.kind, reach.target)
            held[key] |= data
            via[key].add(reach.grant)
    may = allowed(p, accounts)
    for (account, kind, target), permissions in sorted(held.items()):
        extra = sorted(permissions - may.get((account, kind, target), frozenset()))
        if extra:
            problems.append(f"{account} reaches {kind} {target} with {', '.join(extra)} "
                            f"(through {', '.join(sorted(via[(account, kind, target)]))})")
    # What an account may act as, it reaches as well: only a borrower, and only what its borrowed
    # account may reach.
    for (account, kind, target), permissions in sorted(held.items()):
        if kind != "account" or not permissions & IMPERSONATION:
            continue
        borrowed = target.rsplit("/", 1)[-1].removeprefix("hydro-").split("@")[0]
        for (other, other_kind, other_target), rights in sorted(held.items()):
            if other != borrowed or other_kind == "account":
                continue
            extra = sorted(rights - may.get((account, other_kind, other_target), frozenset())
                           - may.get((borrowed, other_kind, other_target), frozenset()))
            if extra or not any(r.name == borrowed and r.borrowed_by == account for r in accounts):
                problems.append(f"{account} reaches {other_kind} {other_target} by acting as {borrowed}")
    return problems


# --- the real stacks pass ----------------------------------------------------------------------

@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_no_account_reaches_a_bucket_or_secret_beyond_its_role(plans, stack):
    assert reach_violations(plans[stack]) == []


def test_the_checker_sees_the_grants_it_judges(plans):
    # Independently of the verdict: what the expansion finds in dev, written out by hand.
    found, problems = reaches(plans["dev"])
    assert problems == []
    direct = {(r.account, r.kind, r.target.removeprefix("hydrostream-dev-").removeprefix("hydrostream-"))
              for r in found if data_permissions(r.kind, r.permissions)}
    backup_account = ("projects/hydrostream-dev/serviceAccounts/"
                      "hydro-tsdb-backup@hydrostream-dev.iam.gserviceaccount.com")
    assert direct == {
        ("dataproc", "bucket", "dataproc-staging"), ("dataproc", "bucket", "dataproc-temp"),
        ("dataproc", "bucket", "artifacts"), ("dataproc", "bucket", "checkpoints"),
        ("monitoring", "bucket", "config"), ("tsdb-backup", "bucket", "influxdb-backups"),
        ("broker", "bucket", "broker-agents"),
        ("dataproc", "secret", catalog.INFLUXDB_WRITE_TOKEN),
        ("dataproc", "secret", "kafka-password-hydro-producer"),
        ("dataproc", "secret", "kafka-password-hydro-consumer"),
        ("broker", "secret", "kafka-password-hydro-admin"),
        ("broker", "secret", "kafka-password-hydro-producer"),
        ("broker", "secret", "kafka-password-hydro-consumer"),
        ("monitoring", "secret", catalog.GRAFANA_ADMIN_PASSWORD),
        ("monitoring", "secret", catalog.INFLUXDB_READ_TOKEN),
        ("tsdb", "secret", catalog.INFLUXDB_ADMIN_PASSWORD), ("tsdb", "secret", catalog.INFLUXDB_TOKEN),
        ("tsdb", "secret", catalog.INFLUXDB_WRITE_TOKEN), ("tsdb", "secret", catalog.INFLUXDB_READ_TOKEN),
        ("tsdb", "account", backup_account),
    }
    (minting,) = [r for r in found if r.kind == "account" and data_permissions(r.kind, r.permissions)]
    assert data_permissions("account", minting.permissions) == {"iam.serviceAccounts.getAccessToken"}


# --- each way of reaching too far is reported ----------------------------------------------------

def with_role(monkeypatch, changed: roles.Role) -> tuple[roles.Role, ...]:
    accounts = tuple(changed if r.name == changed.name else r for r in roles.ACCOUNTS)
    monkeypatch.setattr(roles, "ACCOUNTS", accounts)
    return accounts


def test_the_old_dataproc_worker_grant_reaches_every_bucket(monkeypatch):
    # The grant before issue 29: roles/dataproc.worker on the project instead of the custom role.
    with_role(monkeypatch, dataclasses.replace(roles.DATAPROC, project_roles=("roles/dataproc.worker",),
                                               custom_roles=()))
    broken = mocks.run_plan("dev")
    assert any(g.inputs.get("role") == "roles/dataproc.worker" for g in broken.resources)
    found = reach_violations(broken)
    reached = {line.split(" with ")[0] for line in found}
    # The backups (the operator token is in them) and the monitoring config: read, overwrite, delete.
    assert {"dataproc reaches bucket hydrostream-dev-influxdb-backups",
            "dataproc reaches bucket hydrostream-dev-config"} <= reached
    backups = next(line for line in found if "influxdb-backups" in line)
    assert all(p in backups for p in ("storage.objects.get", "storage.objects.delete",
                                      "storage.objects.update"))
    assert backups.endswith("(through identity-dataproc-dataproc.worker)")
    # The artifacts it may only read: the worker role would let it rewrite a release.
    artifacts = next(line for line in found
                     if line.startswith("dataproc reaches bucket hydrostream-dev-artifacts"))
    assert "storage.objects.create" in artifacts and "storage.objects.get," not in artifacts


def test_token_creator_on_the_backup_account_is_more_than_minting(monkeypatch):
    project = "hydrostream-dev"
    grant = mocks.PlannedResource(
        type="gcp:serviceaccount/iAMMember:IAMMember", name="borrow", urn="urn:borrow", parent="",
        custom=True,
        inputs={"serviceAccountId": f"projects/{project}/serviceAccounts/hydro-tsdb-backup@{project}"
                                    ".iam.gserviceaccount.com",
                "role": "roles/iam.serviceAccountTokenCreator",
                "member": f"serviceAccount:hydro-tsdb@{project}.iam.gserviceaccount.com"},
        secret_paths=frozenset(), protect=False, delete_before_replace=False, retain_on_delete=False,
        dependencies=(), ignore_changes=())
    real = mocks.run_plan("dev")
    widened = mocks.Plan("dev", [*real.resources, grant], real.outputs, real.secret_outputs, real.settings)
    (line,) = reach_violations(widened)
    assert line.startswith("tsdb reaches account projects/hydrostream-dev/serviceAccounts/hydro-tsdb-backup@")
    assert "iam.serviceAccounts.signBlob" in line and "iam.serviceAccounts.signJwt" in line
    assert "getAccessToken," not in line  # minting is its due


@pytest.mark.parametrize(("changed", "expected"), [
    # A bucket outside the role's list.
    (lambda: dataclasses.replace(roles.MONITORING, buckets=(
        *roles.MONITORING.buckets, (roles.Bucket.BACKUPS, roles.BucketAccess.READ))),
     "monitoring reaches bucket hydrostream-dev-influxdb-backups with storage.folders.get"),
    # A secret outside the role's list.
    (lambda: dataclasses.replace(roles.DATAPROC, reads=(*roles.DATAPROC.reads, catalog.INFLUXDB_TOKEN)),
     "dataproc reaches secret hydrostream-influxdb-token with secretmanager.versions.access"),
])
def test_a_grant_beyond_the_role_list_is_reported(monkeypatch, changed, expected):
    # The plan grants from a widened roles.py; the checker judges it against the real one.
    real = roles.ACCOUNTS
    with_role(monkeypatch, changed())
    found = reach_violations(mocks.run_plan("dev"), real)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_borrowed_accounts_reach_counts_for_its_borrower(monkeypatch):
    # The backup account may read the backups: then so may the InfluxDB VM, which mints its tokens.
    real = roles.ACCOUNTS
    with_role(monkeypatch, dataclasses.replace(roles.TSDB_BACKUP, buckets=(
        (roles.Bucket.BACKUPS, roles.BucketAccess.ADMIN),)))
    found = reach_violations(mocks.run_plan("dev"), real)
    assert found[0].startswith("tsdb-backup reaches bucket hydrostream-dev-influxdb-backups with "
                               "storage.folders.delete")
    assert found[1] == "tsdb reaches bucket hydrostream-dev-influxdb-backups by acting as tsdb-backup"


def test_a_role_missing_from_the_table_is_refused(monkeypatch):
    with_role(monkeypatch, dataclasses.replace(roles.BROKER, project_roles=("roles/compute.viewer",)))
    assert reach_violations(mocks.run_plan("dev")) == [
        "identity-broker-compute.viewer: role roles/compute.viewer is neither in predefined_roles.yaml nor a "
        "custom role of the plan: record its permissions before granting it"]
