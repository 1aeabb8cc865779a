"""Security and hygiene policies on the offline plans of the GCP stacks (dev, staging, prod).

Each policy is a function `plan -> list of violations`, read from what the real program registered
under mocks. The same functions judge deliberately broken plans (the real program with one rule
broken through monkeypatching, or a hand-built plan), so each policy is shown to fail when it should.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import ipaddress
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
import pytest

from infra import catalog, roles
from infra.gcp import firewall, service_vm, storage
from infra.gcp import secrets as gcp_secrets
from infra.gcp import stack as gcp_stack
from infra.settings import RECEIVER_SECRET_KEYS, STACKS, StackSettings, parse_settings
from infra.tools import mocks

GCP_STACKS = tuple(s for s in STACKS if parse_settings(s, mocks.stack_config(s)).target == "gcp")
PROTECTED_STACKS = ("prod",)
DISPOSABLE_STACKS = ("dev",)

FIREWALL = "gcp:compute/firewall:Firewall"
INSTANCE = "gcp:compute/instance:Instance"
INSTANCE_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
DISK = "gcp:compute/disk:Disk"
CLUSTER = "gcp:dataproc/cluster:Cluster"
ACCOUNT = "gcp:serviceaccount/account:Account"
BUCKET = "gcp:storage/bucket:Bucket"
SECRET = "gcp:secretmanager/secret:Secret"
SECRET_VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
SNAPSHOT_POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
SNAPSHOT_ATTACHMENT = "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT_GRANT = "gcp:serviceaccount/iAMMember:IAMMember"

# The one place a secret value may enter a resource: the Secret Manager version that stores it.
SECRET_SINKS = frozenset({(SECRET_VERSION, "secretData")})
DEFAULT_COMPUTE_ACCOUNT = re.compile(r"[0-9]+-compute@developer\.gserviceaccount\.com")
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
# Data access is granted on a bucket or a secret, never on the whole project.
RESOURCE_LEVEL_ROLE_PREFIXES = ("roles/storage.", "roles/secretmanager.")
IAM_MEMBER_TYPES = frozenset({
    "gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding",
    "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:secretmanager/secretIamBinding:SecretIamBinding",
    ACCOUNT_GRANT, "gcp:serviceaccount/iAMBinding:IAMBinding",
})
PROJECT_IAM_TYPES = frozenset({"gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding"})


# --- reading a plan ----------------------------------------------------------------------------

def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a resource's inputs with its path, in the form `plan` records secret paths."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def plain_leaves(resource: mocks.PlannedResource) -> Iterator[tuple[str, Any]]:
    """Leaves of the inputs outside the values the program marked secret."""
    def skip(path: str) -> bool:
        return any(path == s or path.startswith((f"{s}.", f"{s}[")) for s in resource.secret_paths)
    return ((path, value) for path, value in walk(resource.inputs) if not skip(path))


def dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def ingress_rules(p: mocks.Plan) -> list[mocks.PlannedResource]:
    return [r for r in p.of_type(FIREWALL) if r.inputs.get("direction", "INGRESS") == "INGRESS"
            and r.inputs.get("allows")]


def admits(rule: mocks.PlannedResource, port: int) -> bool:
    """Whether a firewall rule's allow blocks admit TCP `port`."""
    for allow in rule.inputs.get("allows", []):
        if allow.get("protocol") not in ("tcp", "all", "6"):
            continue
        ports = allow.get("ports") or []
        if not ports:
            return True
        for entry in ports:
            low, _, high = str(entry).partition("-")
            if int(low) <= port <= int(high or low):
                return True
    return False


# The operator's receiver secrets (`pulumi config set --secret`), one recognisable value per key.
RECEIVER_VALUES = {key: f"receiver-{key.partition(':')[2]}-{secrets.token_hex(8)}"
                   for key in sorted(mocks.SECRET_CONFIG_KEYS)}
# Settings refuse a webhook URL secret that is no http(s) URL: the leak checks look for its host part.
_WEBHOOK_KEY = f"hydrostream:{RECEIVER_SECRET_KEYS[catalog.WEBHOOK_URL]}"
RECEIVER_VALUES[_WEBHOOK_KEY] = f"https://{RECEIVER_VALUES[_WEBHOOK_KEY].replace('_', '-')}.invalid/"


def mock_secret_values(p: mocks.Plan) -> dict[str, str]:
    """The generated values (HydroMocks makes them `mock-<resource name>-value`), by resource name,
    and the receiver secrets given as config, by config key."""
    generated = {r.name: f"mock-{r.name}-value" for r in p.resources
                 if r.type.startswith("random:index/random")}
    return {**generated, **RECEIVER_VALUES}


def our_service_accounts(p: mocks.Plan) -> set[str]:
    project = p.settings.gcp.project
    return {f"{r.inputs['accountId']}@{project}.iam.gserviceaccount.com" for r in p.of_type(ACCOUNT)}


@functools.cache
def labelable(type_: str) -> bool:
    """Whether the SDK resource class behind a type token accepts `labels`."""
    package, module, name = type_.split(":")
    sdk = importlib.import_module(f"pulumi_{package}")
    module = module.split("/")[0]
    cls = getattr(sdk if module == "index" else getattr(sdk, module), name)
    return "labels" in inspect.signature(cls._internal_init).parameters


# --- policies ----------------------------------------------------------------------------------

def firewall_source_violations(p: mocks.Plan) -> list[str]:
    """Ingress only from service accounts, the IAP range or the stack's Grafana CIDRs; never from the
    internet."""
    named = {firewall.IAP_RANGE, *p.settings.network.grafana_source_ranges}
    found = []
    for rule in ingress_rules(p):
        ranges = rule.inputs.get("sourceRanges") or []
        if not ranges and not rule.inputs.get("sourceTags") and not rule.inputs.get("sourceServiceAccounts"):
            found.append(f"{rule.name}: no source, which GCP reads as 0.0.0.0/0")
        for cidr in ranges:
            if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                found.append(f"{rule.name}: open to the internet ({cidr})")
            elif cidr not in named:
                found.append(f"{rule.name}: source {cidr} is neither the IAP range nor a configured CIDR")
    return found


def ssh_violations(p: mocks.Plan) -> list[str]:
    """Port 22 is reachable only from the IAP range (and inside the Dataproc cluster, node to node)."""
    found = []
    for rule in ingress_rules(p):
        if not admits(rule, firewall.SSH_PORT):
            continue
        ranges = rule.inputs.get("sourceRanges") or []
        accounts = set(rule.inputs.get("sourceServiceAccounts") or [])
        if ranges and ranges != [firewall.IAP_RANGE]:
            found.append(f"{rule.name}: SSH from {ranges}, not only {firewall.IAP_RANGE}")
        if accounts and accounts != set(rule.inputs.get("targetServiceAccounts") or []):
            found.append(f"{rule.name}: SSH from accounts {sorted(accounts)} into other accounts")
        if not ranges and not accounts:
            found.append(f"{rule.name}: SSH from anywhere")
    return found


def firewall_selector_violations(p: mocks.Plan) -> list[str]:
    """Every rule selects instances by the stack's own service accounts, never by network tag (anyone with
    setTags on an instance could move it into the rule); only a deny applies to every instance; an
    egress rule names no source (its instances are its targets)."""
    ours = our_service_accounts(p)
    found = []
    for rule in p.of_type(FIREWALL):
        for field in ("sourceTags", "targetTags"):
            if rule.inputs.get(field):
                found.append(f"{rule.name}: selects by network tag ({field} {rule.inputs[field]})")
        targets = rule.inputs.get("targetServiceAccounts") or []
        sources = rule.inputs.get("sourceServiceAccounts") or []
        if rule.inputs.get("allows") and not targets and not rule.inputs.get("targetTags"):
            found.append(f"{rule.name}: allows on every instance (no target service account)")
        if rule.inputs.get("direction") == "EGRESS" and (sources or rule.inputs.get("sourceTags")):
            found.append(f"{rule.name}: an egress rule with a source (GCP takes none)")
        for account in sorted(set(targets + sources) - ours):
            found.append(f"{rule.name}: names {account}, not one of the stack's accounts")
    return found


def public_ip_violations(p: mocks.Plan) -> list[str]:
    """No VM has an external address; every Dataproc cluster is internal-IP-only."""
    found = []
    for vm in p.of_type(INSTANCE) + p.of_type(INSTANCE_TEMPLATE):
        for index, nic in enumerate(vm.inputs.get("networkInterfaces", [])):
            if nic.get("accessConfigs") or nic.get("ipv6AccessConfigs"):
                found.append(f"{vm.name}: network interface {index} has an external address")
    for cluster in p.of_type(CLUSTER):
        if dig(cluster.inputs, "clusterConfig", "gceClusterConfig", "internalIpOnly") is not True:
            found.append(f"{cluster.name}: internalIpOnly is not set")
    return found


def service_account_violations(p: mocks.Plan) -> list[str]:
    """Every VM and cluster runs as one of the stack's own accounts; the default one appears nowhere."""
    ours = our_service_accounts(p)
    found = []
    for vm in p.of_type(INSTANCE) + p.of_type(INSTANCE_TEMPLATE):
        email = dig(vm.inputs, "serviceAccount", "email")
        if email not in ours:
            found.append(f"{vm.name}: runs as {email!r}, not one of {sorted(ours)}")
    for cluster in p.of_type(CLUSTER):
        email = dig(cluster.inputs, "clusterConfig", "gceClusterConfig", "serviceAccount")
        if email not in ours:
            found.append(f"{cluster.name}: runs as {email!r} (none means the default compute account)")
    for resource in p.resources:
        for path, value in walk(resource.inputs):
            if isinstance(value, str) and DEFAULT_COMPUTE_ACCOUNT.search(value):
                found.append(f"{resource.name}: {path} names the default compute service account")
    return found


def iam_role_violations(p: mocks.Plan) -> list[str]:
    """No basic role anywhere; storage and Secret Manager roles only on a bucket or a secret."""
    found = []
    for grant in p.resources:
        if grant.type not in IAM_MEMBER_TYPES:
            continue
        role = grant.inputs.get("role", "")
        if role in BASIC_ROLES:
            found.append(f"{grant.name}: basic role {role}")
        if grant.type in PROJECT_IAM_TYPES and role.startswith(RESOURCE_LEVEL_ROLE_PREFIXES):
            found.append(f"{grant.name}: {role} on the whole project instead of a bucket or secret")
    return found


# Who may hold each InfluxDB token: the operator token never leaves the InfluxDB VM.
TOKEN_HOLDERS = {
    "hydrostream-influxdb-token": {"roles/secretmanager.secretAccessor": {catalog.TSDB}},
    "hydrostream-influxdb-write-token": {"roles/secretmanager.secretAccessor": {catalog.DATAPROC},
                                         "roles/secretmanager.secretVersionAdder": {catalog.TSDB}},
    "hydrostream-influxdb-read-token": {"roles/secretmanager.secretAccessor": {catalog.MONITORING},
                                        "roles/secretmanager.secretVersionAdder": {catalog.TSDB}},
}


def token_scope_violations(p: mocks.Plan) -> list[str]:
    """Each InfluxDB token's secret grants exactly the roles above, each to its one role's account."""
    found = []
    for grant in p.resources:
        secret = grant.inputs.get("secretId")
        if grant.type not in IAM_MEMBER_TYPES or secret not in TOKEN_HOLDERS:
            continue
        members = grant.inputs.get("members") or [grant.inputs.get("member", "")]
        allowed = TOKEN_HOLDERS[secret].get(grant.inputs.get("role", ""), set())
        for member in members:
            account = re.fullmatch(r"serviceAccount:hydro-([a-z]+)@[^@]+\.iam\.gserviceaccount\.com", member)
            if account is None or account.group(1) not in allowed:
                found.append(f"{grant.name}: {member} gets {grant.inputs.get('role')} on {secret}")
    return found


def secret_leak_violations(p: mocks.Plan) -> list[str]:
    """Generated values appear only, marked secret, in the Secret Manager versions; never in plain
    inputs (metadata, startup scripts, job arguments included) or plain stack outputs."""
    values = mock_secret_values(p)
    found = []
    for resource in p.resources:
        for path in resource.secret_paths:
            if (resource.type, path) not in SECRET_SINKS:
                found.append(f"{resource.name}: a secret value flows into {path}")
        for path, value in plain_leaves(resource):
            for name, secret in values.items():
                if isinstance(value, str) and secret in value:
                    found.append(f"{resource.name}: {path} holds the value of {name} unmarked")
    for key, output in p.outputs.items():
        if key in p.secret_outputs:
            continue
        for path, value in walk(output, key):
            for name, secret in values.items():
                if isinstance(value, str) and secret in value:
                    found.append(f"stack output {path} holds the value of {name} in plain text")
    return found


def label_violations(p: mocks.Plan) -> list[str]:
    """Every resource whose SDK type takes labels carries app and env."""
    expected = {"app": "hydrostream", "env": p.stack}
    found = []
    for resource in p.resources:
        if not resource.custom or resource.type.startswith("pulumi:") or not labelable(resource.type):
            continue
        labels = resource.inputs.get("labels") or {}
        for key, value in expected.items():
            if labels.get(key) != value:
                found.append(f"{resource.name} ({resource.type}): label {key}={labels.get(key)!r}, "
                             f"expected {value!r}")
    return found


def protection_violations(p: mocks.Plan) -> list[str]:
    """Prod: VMs refuse deletion; data disks, buckets and secrets are protected; no bucket force-destroys.
    Dev: buckets force-destroy, so a dev stack can be torn down."""
    found = []
    if p.stack in PROTECTED_STACKS:
        for vm in p.of_type(INSTANCE):
            if vm.inputs.get("deletionProtection") is not True:
                found.append(f"{vm.name}: no deletion protection")
        # The operator's receiver values are rotated by replacing their version (secret_data is
        # ForceNew upstream); their secrets stay protected.
        rotated = {f"secrets-{n}" for n in catalog.RECEIVER_SECRETS}
        versions = [v for v in p.of_type(SECRET_VERSION) if v.name not in rotated]
        for resource in p.of_type(DISK) + p.of_type(BUCKET) + p.of_type(SECRET) + versions:
            if not resource.protect:
                found.append(f"{resource.name} ({resource.type}): not protected")
        for bucket in p.of_type(BUCKET):
            if bucket.inputs.get("forceDestroy"):
                found.append(f"{bucket.name}: force_destroy")
    if p.stack in DISPOSABLE_STACKS:
        for bucket in p.of_type(BUCKET):
            if bucket.inputs.get("forceDestroy") is not True:
                found.append(f"{bucket.name}: no force_destroy in {p.stack}")
    return found


def snapshot_violations(p: mocks.Plan) -> list[str]:
    """Every data disk is attached to a daily snapshot schedule in the region that keeps the stack's
    retention and outlives the disk; prod protects the schedules and retains its disks."""
    backups, region = p.settings.backups, p.settings.gcp.region
    schedules = {r.inputs.get("name"): r for r in p.of_type(SNAPSHOT_POLICY)}
    found = []
    if len(schedules) != len(p.of_type(SNAPSHOT_POLICY)):
        found.append("two snapshot schedules share a name (the API refuses the second)")
    attached: dict[str, list[str]] = {}
    for attachment in p.of_type(SNAPSHOT_ATTACHMENT):
        attached.setdefault(attachment.inputs.get("disk"), []).append(attachment.inputs.get("name"))
    for disk in p.of_type(DISK):
        names = attached.get(disk.inputs.get("name"), [])
        if len(names) != 1:
            found.append(f"{disk.name}: {len(names)} snapshot schedules attached, expected 1")
            continue
        schedule = schedules.get(names[0])
        if schedule is None:
            found.append(f"{disk.name}: attached to {names[0]!r}, which is no resource policy of the plan")
            continue
        policy = schedule.inputs.get("snapshotSchedulePolicy") or {}
        daily = dig(policy, "schedule", "dailySchedule") or {}
        retention = policy.get("retentionPolicy") or {}
        checks = {
            "daysInCycle": (daily.get("daysInCycle"), 1),
            "maxRetentionDays": (retention.get("maxRetentionDays"), backups.snapshot_retention_days),
            "onSourceDiskDelete": (retention.get("onSourceDiskDelete"), "KEEP_AUTO_SNAPSHOTS"),
            "storageLocations": (dig(policy, "snapshotProperties", "storageLocations"), region),
            "region": (schedule.inputs.get("region"), region),
        }
        for key, (actual, expected) in checks.items():
            if actual != expected:
                found.append(f"{disk.name}: snapshot schedule {key}={actual!r}, expected {expected!r}")
        if "snapshot" not in disk.ignore_changes:
            found.append(f"{disk.name}: a disk restored from a snapshot would be replaced "
                         "(ignore `snapshot`)")
        if p.stack in PROTECTED_STACKS:
            if not schedule.protect:
                found.append(f"{schedule.name}: not protected")
            if not disk.retain_on_delete:
                found.append(f"{disk.name}: not retained on delete")
    return found


def backup_violations(p: mocks.Plan) -> list[str]:
    """One backup bucket with the stack's expiry and a retention policy as long (locked on prod, and no
    versioning, which a retention policy excludes); only the backup account may create objects
    there and do nothing else; it holds no project role; only the InfluxDB VM's account may borrow it."""
    project = p.settings.gcp.project
    backup_email = f"hydro-tsdb-backup@{project}.iam.gserviceaccount.com"
    tsdb_email = f"hydro-tsdb@{project}.iam.gserviceaccount.com"
    bucket_name = storage.bucket_name(project, roles.Bucket.BACKUPS)
    found = []
    buckets = [b for b in p.of_type(BUCKET) if b.inputs.get("name") == bucket_name]
    if len(buckets) != 1:
        return [f"{len(buckets)} buckets named {bucket_name}, expected 1"]
    (bucket,) = buckets
    retention = bucket.inputs.get("retentionPolicy") or {}
    seconds = p.settings.backups.influxdb_retention_days * 86_400
    if str(retention.get("retentionPeriod")) != str(seconds):
        found.append(f"{bucket.name}: retention period {retention.get('retentionPeriod')!r}, "
                     f"expected {seconds}")
    if bool(retention.get("isLocked")) != (p.stack in PROTECTED_STACKS):
        found.append(f"{bucket.name}: retention policy locked={bool(retention.get('isLocked'))} in {p.stack}")
    if dig(bucket.inputs, "versioning", "enabled") is not False:
        found.append(f"{bucket.name}: versioning not turned off (a retention policy refuses it)")
    ages = [dig(rule, "condition", "age") for rule in bucket.inputs.get("lifecycleRules") or []
            if dig(rule, "action", "type") == "Delete"]
    if p.settings.backups.influxdb_retention_days not in ages:
        found.append(f"{bucket.name}: backups expire at ages {ages}, expected "
                     f"{p.settings.backups.influxdb_retention_days}")
    grants = sorted((g.inputs.get("role"), g.inputs.get("member")) for g in p.of_type(BUCKET_GRANT)
                    if g.inputs.get("bucket") == bucket_name)
    if grants != [("roles/storage.objectCreator", f"serviceAccount:{backup_email}")]:
        found.append(f"{bucket.name}: grants {grants}, expected object create for {backup_email} only")
    for grant in p.resources:
        member = grant.inputs.get("member") or ""
        if grant.type in IAM_MEMBER_TYPES and member.endswith(backup_email) and grant.inputs.get(
                "bucket") != bucket_name:
            role = grant.inputs.get("role")
            found.append(f"{grant.name}: the backup account holds {role} beyond its bucket")
    borrowers = sorted((g.inputs.get("serviceAccountId"), g.inputs.get("role"), g.inputs.get("member"))
                       for g in p.of_type(ACCOUNT_GRANT))
    expected = [(f"projects/{project}/serviceAccounts/{backup_email}",
                 roles.ACCESS_TOKEN_MINTER.name(project), f"serviceAccount:{tsdb_email}")]
    if borrowers != expected:
        found.append(f"service account grants {borrowers}, expected {expected}")
    return found


POLICIES = (
    firewall_source_violations, ssh_violations, firewall_selector_violations, public_ip_violations,
    service_account_violations, iam_role_violations, secret_leak_violations, label_violations,
    protection_violations, token_scope_violations, snapshot_violations, backup_violations,
)


# --- the real stacks pass ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def receiver_plans() -> dict[str, mocks.Plan]:
    """The GCP stacks' plans with a value of its own for each receiver secret (the shared plans hold one
    placeholder for all), so that the leak policy finds each one by its value."""
    return {stack: mocks.run_plan(stack, {**mocks.stack_config(stack), **RECEIVER_VALUES})
            for stack in GCP_STACKS}


def test_gcp_stacks_are_dev_staging_prod():
    assert GCP_STACKS == ("dev", "staging", "prod")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_stack_satisfies_policy(receiver_plans, stack, policy):
    assert policy(receiver_plans[stack]) == []


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_policies_see_what_they_govern(receiver_plans, stack):
    # A policy over an empty list passes; these are the resources the policies above must have read.
    p = receiver_plans[stack]
    assert len(ingress_rules(p)) >= 7
    assert len([r for r in p.of_type(FIREWALL) if r.inputs["direction"] == "EGRESS"]) >= 6
    receivers = settings_of(stack).alerting.secrets
    assert len(p.of_type(BUCKET)) == len(roles.Bucket)
    assert len(p.of_type(SECRET)) == len(catalog.SECRETS) - len(catalog.RECEIVER_SECRETS) + len(receivers)
    # One VM per role, but kafka.brokers of them for the broker role (three on staging and prod).
    vms = len(catalog.ROLES) - 1 + p.settings.kafka.brokers
    assert len(p.of_type(SNAPSHOT_ATTACHMENT)) == len(p.of_type(DISK)) == vms >= 3
    assert len(p.of_type(ACCOUNT_GRANT)) == 1
    assert len(p.of_type(INSTANCE)) == len(p.of_type(DISK)) == vms
    assert len(p.of_type(CLUSTER)) == 1
    assert all(vm.inputs["metadata"]["user-data"].startswith("#cloud-config") for vm in p.of_type(INSTANCE))
    assert len(mock_secret_values(p)) == len(catalog.GENERATED_SECRETS) + len(RECEIVER_VALUES)
    # The receiver values this stack uses reach their Secret Manager versions (so the leak check reads them).
    # Marked secret, as in the wire form: {<signature key>: <secret signature>, "value": ...}.
    stored = {v.inputs["secretData"]["value"] for v in p.of_type(SECRET_VERSION)}
    used = {RECEIVER_VALUES[f"hydrostream:{RECEIVER_SECRET_KEYS[secret]}"] for secret in receivers}
    assert used <= stored and (stack != "prod" or len(used) == len(catalog.RECEIVER_SECRETS))
    token_grants = [r for r in p.resources if r.type in IAM_MEMBER_TYPES
                    and r.inputs.get("secretId") in TOKEN_HOLDERS]
    assert len(token_grants) == 5
    assert {r.name for r in p.resources if r.secret_paths} == {r.name for r in p.of_type(SECRET_VERSION)}
    assert labelable(BUCKET) and labelable(SECRET) and labelable(INSTANCE) and labelable(CLUSTER)
    assert not labelable(FIREWALL) and not labelable("random:index/randomPassword:RandomPassword")


def test_prod_is_the_protected_stack(receiver_plans):
    assert receiver_plans["prod"].settings.protect and not receiver_plans["dev"].settings.protect


# --- each policy fails when its rule is broken -------------------------------------------------

def settings_of(stack: str) -> StackSettings:
    return parse_settings(stack, mocks.stack_config(stack))


def resource(type_: str, name: str, inputs: dict[str, Any], *, protect: bool = False,
             secret_paths: frozenset[str] = frozenset()) -> mocks.PlannedResource:
    return mocks.PlannedResource(type=type_, name=name, urn=f"urn:{type_}::{name}", parent="", custom=True,
                                inputs=inputs, secret_paths=secret_paths, protect=protect,
                                delete_before_replace=False, retain_on_delete=False, dependencies=(),
                                ignore_changes=())


def hand_built(stack: str, *resources: mocks.PlannedResource, outputs: dict[str, Any] | None = None,
               secret_outputs: frozenset[str] = frozenset()) -> mocks.Plan:
    return mocks.Plan(stack, list(resources), outputs or {}, secret_outputs, settings_of(stack))


LABELS = {"app": "hydrostream", "env": "dev"}
OUR_ACCOUNT = resource(ACCOUNT, "identity-broker", {"accountId": "hydro-broker"})
OUR_EMAIL = "hydro-broker@hydrostream-dev.iam.gserviceaccount.com"
MONITORING_EMAIL = "hydro-monitoring@hydrostream-dev.iam.gserviceaccount.com"
PASSWORD = resource("random:index/randomPassword:RandomPassword", "secrets-grafana-admin-password",
                    {"length": 32})
PASSWORD_VALUE = "mock-secrets-grafana-admin-password-value"


def vm(name: str = "kafka-vm", **overrides: Any) -> mocks.PlannedResource:
    inputs = {"labels": LABELS, "serviceAccount": {"email": OUR_EMAIL, "scopes": ["cloud-platform"]},
              "networkInterfaces": [{"subnetwork": "subnet"}], "metadata": {"user-data": "#cloud-config"}}
    inputs.update(overrides)
    return resource(INSTANCE, name, inputs)


def test_a_flow_from_the_internet_is_reported(monkeypatch):
    real_flows = firewall.flows
    world = firewall.SourceRange("anyone", ("0.0.0.0/0",))
    monkeypatch.setattr(firewall, "flows", lambda *args: (
        *real_flows(*args),
        firewall.Flow("ssh-from-anyone", target_roles=(catalog.BROKER,), ports=(22,), source_range=world)))
    broken = mocks.run_plan("dev")
    assert firewall_source_violations(broken) == [
        "firewall-ssh-from-anyone: open to the internet (0.0.0.0/0)"]
    assert ssh_violations(broken) == ["firewall-ssh-from-anyone: SSH from ['0.0.0.0/0'], not only "
                                      "35.235.240.0/20"]


def test_a_rule_without_source_or_from_an_unnamed_range_is_reported():
    no_source = resource(FIREWALL, "fw-nosource", {"allows": [{"protocol": "tcp", "ports": ["9092"]}],
                                                   "targetServiceAccounts": [OUR_EMAIL]})
    office = resource(FIREWALL, "fw-office", {"allows": [{"protocol": "tcp", "ports": ["3000"]}],
                                              "sourceRanges": ["203.0.113.0/24"],
                                              "targetServiceAccounts": [MONITORING_EMAIL]})
    assert firewall_source_violations(hand_built("dev", no_source, office)) == [
        "fw-nosource: no source, which GCP reads as 0.0.0.0/0",
        "fw-office: source 203.0.113.0/24 is neither the IAP range nor a configured CIDR",
    ]
    # The same range is fine once the stack names it for Grafana.
    configured = mocks.Plan("dev", [office], {}, frozenset(), parse_settings("dev", {
        **mocks.stack_config("dev"), "hydrostream:network": {"grafana_source_ranges": ["203.0.113.0/24"]}}))
    assert firewall_source_violations(configured) == []


def test_ssh_from_other_accounts_or_port_ranges_is_reported():
    from_monitoring = resource(FIREWALL, "fw-accounts", {
        "allows": [{"protocol": "tcp", "ports": ["20-30"]}],
        "sourceServiceAccounts": [MONITORING_EMAIL], "targetServiceAccounts": [OUR_EMAIL]})
    all_tcp = resource(FIREWALL, "fw-all", {"allows": [{"protocol": "all"}], "sourceRanges": ["10.0.0.0/8"],
                                            "targetServiceAccounts": [OUR_EMAIL]})
    udp_only = resource(FIREWALL, "fw-udp", {"allows": [{"protocol": "udp", "ports": ["22"]}],
                                             "sourceRanges": ["10.0.0.0/8"],
                                             "targetServiceAccounts": [OUR_EMAIL]})
    assert ssh_violations(hand_built("dev", from_monitoring, all_tcp, udp_only)) == [
        f"fw-accounts: SSH from accounts ['{MONITORING_EMAIL}'] into other accounts",
        "fw-all: SSH from ['10.0.0.0/8'], not only 35.235.240.0/20",
    ]


def test_a_rule_selecting_by_network_tag_is_reported(plans):
    # One rule of the real plan moved back to tags: caught, and only that rule.
    real = plans["dev"]
    kafka = next(r for r in real.of_type(FIREWALL) if r.name == "firewall-kafka-from-dataproc")
    tagged = dataclasses.replace(kafka, inputs={
        **{k: v for k, v in kafka.inputs.items() if not k.endswith("ServiceAccounts")},
        "sourceTags": [catalog.DATAPROC], "targetTags": [catalog.BROKER]})
    broken = mocks.Plan("dev", [tagged if r is kafka else r for r in real.resources], real.outputs,
                        real.secret_outputs, real.settings)
    assert firewall_selector_violations(broken) == [
        "firewall-kafka-from-dataproc: selects by network tag (sourceTags ['dataproc'])",
        "firewall-kafka-from-dataproc: selects by network tag (targetTags ['broker'])",
    ]


def test_a_rule_mixing_tags_stray_accounts_or_an_egress_source_is_reported():
    ssh = [{"protocol": "tcp", "ports": ["22"]}]
    stranger_account = "x@elsewhere.iam.gserviceaccount.com"
    monitoring = resource(ACCOUNT, "identity-monitoring", {"accountId": "hydro-monitoring"})
    mixed = resource(FIREWALL, "fw-mixed", {"direction": "INGRESS", "allows": ssh,
                                            "sourceRanges": [firewall.IAP_RANGE], "targetTags": ["broker"],
                                            "targetServiceAccounts": [OUR_EMAIL]})
    stranger = resource(FIREWALL, "fw-stranger", {"direction": "INGRESS", "allows": ssh,
                                                  "sourceServiceAccounts": [stranger_account],
                                                  "targetServiceAccounts": [OUR_EMAIL]})
    egress = resource(FIREWALL, "fw-egress", {"direction": "EGRESS", "allows": ssh,
                                              "destinationRanges": ["10.0.0.0/8"],
                                              "sourceServiceAccounts": [MONITORING_EMAIL],
                                              "targetServiceAccounts": [OUR_EMAIL]})
    everyone = resource(FIREWALL, "fw-everyone", {"direction": "INGRESS", "allows": ssh,
                                                  "sourceRanges": [firewall.IAP_RANGE]})
    # A deny-all with no target is how egress closes for every instance: not a violation.
    deny_all = resource(FIREWALL, "fw-deny", {"direction": "EGRESS", "denies": [{"protocol": "all"}],
                                              "destinationRanges": ["0.0.0.0/0"]})
    assert firewall_selector_violations(hand_built(
        "dev", OUR_ACCOUNT, monitoring, mixed, stranger, egress, everyone, deny_all)) == [
        "fw-mixed: selects by network tag (targetTags ['broker'])",
        f"fw-stranger: names {stranger_account}, not one of the stack's accounts",
        "fw-egress: an egress rule with a source (GCP takes none)",
        "fw-everyone: allows on every instance (no target service account)",
    ]


def test_a_public_ip_is_reported():
    public_vm = vm(networkInterfaces=[{"subnetwork": "subnet", "accessConfigs": [{}]}])
    public_cluster = resource(CLUSTER, "cluster", {"labels": LABELS, "clusterConfig": {
        "gceClusterConfig": {"serviceAccount": OUR_EMAIL, "subnetwork": "subnet"}}})
    assert public_ip_violations(hand_built("dev", public_vm, public_cluster)) == [
        "kafka-vm: network interface 0 has an external address",
        "cluster: internalIpOnly is not set",
    ]
    assert public_ip_violations(hand_built("dev", vm())) == []


def test_the_default_service_account_is_reported():
    default = "123456789012-compute@developer.gserviceaccount.com"
    default_vm = vm(serviceAccount={"email": default, "scopes": ["cloud-platform"]})
    no_account_cluster = resource(CLUSTER, "cluster", {"labels": LABELS, "clusterConfig": {
        "gceClusterConfig": {"internalIpOnly": True}}})
    grant = resource("gcp:storage/bucketIAMMember:BucketIAMMember", "grant",
                     {"bucket": "b", "role": "roles/storage.objectViewer",
                      "member": f"serviceAccount:{default}"})
    found = service_account_violations(hand_built("dev", OUR_ACCOUNT, default_vm, no_account_cluster, grant))
    assert found == [
        f"kafka-vm: runs as {default!r}, not one of [{OUR_EMAIL!r}]",
        "cluster: runs as None (none means the default compute account)",
        "kafka-vm: serviceAccount.email names the default compute service account",
        "grant: member names the default compute service account",
    ]
    assert service_account_violations(hand_built("dev", OUR_ACCOUNT, vm())) == []


def test_a_broad_project_role_is_reported(monkeypatch):
    broad = dataclasses.replace(roles.BROKER, project_roles=("roles/editor", "roles/storage.objectAdmin"))
    monkeypatch.setattr(roles, "ACCOUNTS", tuple(broad if r == roles.BROKER else r for r in roles.ACCOUNTS))
    # Registration order of sibling resources is not part of the contract.
    assert sorted(iam_role_violations(mocks.run_plan("dev"))) == [
        "identity-broker-editor: basic role roles/editor",
        "identity-broker-storage.objectAdmin: roles/storage.objectAdmin on the whole project instead of "
        "a bucket or secret",
    ]


def test_a_secret_in_plain_stack_outputs_is_reported(monkeypatch):
    created: list[gcp_secrets.Secrets] = []

    class KeptSecrets(gcp_secrets.Secrets):
        def __init__(self, name, args, opts=None):
            super().__init__(name, args, opts)
            created.append(self)

    real_deploy = gcp_stack.deploy

    def deploy_exporting_the_token(model, receiver_values):
        outputs = real_deploy(model, receiver_values)
        token = created[-1].values[catalog.INFLUXDB_TOKEN]
        return {**outputs, "influxdb_token": pulumi.Output.unsecret(token)}

    monkeypatch.setattr(gcp_stack, "Secrets", KeptSecrets)
    monkeypatch.setattr(gcp_stack, "deploy", deploy_exporting_the_token)
    broken = mocks.run_plan("dev")
    assert secret_leak_violations(broken) == [
        "stack output influxdb_token holds the value of secrets-influxdb-token in plain text"]


@pytest.mark.parametrize(("secret", "role", "account"), [
    ("hydrostream-influxdb-token", "roles/secretmanager.secretAccessor", "dataproc"),
    ("hydrostream-influxdb-token", "roles/secretmanager.secretAccessor", "monitoring"),
    ("hydrostream-influxdb-write-token", "roles/secretmanager.secretAccessor", "monitoring"),
    ("hydrostream-influxdb-read-token", "roles/secretmanager.secretAccessor", "dataproc"),
    ("hydrostream-influxdb-read-token", "roles/secretmanager.secretVersionAdder", "monitoring"),
    ("hydrostream-influxdb-write-token", "roles/secretmanager.admin", "tsdb"),
])
def test_a_token_readable_beyond_its_holder_is_reported(secret, role, account):
    member = f"serviceAccount:hydro-{account}@hydrostream-dev.iam.gserviceaccount.com"
    grant = resource("gcp:secretmanager/secretIamMember:SecretIamMember", "extra-grant",
                     {"secretId": secret, "role": role, "member": member, "project": "hydrostream-dev"})
    assert token_scope_violations(hand_built("dev", grant)) == [
        f"extra-grant: {member} gets {role} on {secret}"]
    tsdb = {**grant.inputs, "member": member.replace(account, "tsdb"),
            "role": "roles/secretmanager.secretAccessor"}
    allowed = secret == "hydrostream-influxdb-token"
    assert (token_scope_violations(hand_built("dev", resource(grant.type, "g", tsdb))) == []) == allowed


def test_a_secret_in_metadata_is_reported():
    plain = vm("plain-vm", metadata={"user-data": f"password: {PASSWORD_VALUE}"})
    marked = resource(INSTANCE, "marked-vm", {**vm().inputs, "metadata": {"user-data": {
        mocks.rpc._special_sig_key: mocks.rpc._special_secret_sig, "value": PASSWORD_VALUE}}},
        secret_paths=frozenset({"metadata.user-data"}))
    stored = resource(SECRET_VERSION, "stored", {"secret": "s", "secretData": "[secret]"},
                      secret_paths=frozenset({"secretData"}))
    found = secret_leak_violations(hand_built("dev", PASSWORD, plain, marked, stored,
                                              outputs={"grafana": PASSWORD_VALUE, "hidden": PASSWORD_VALUE},
                                              secret_outputs=frozenset({"hidden"})))
    assert found == [
        "plain-vm: metadata.user-data holds the value of secrets-grafana-admin-password unmarked",
        "marked-vm: a secret value flows into metadata.user-data",
        "stack output grafana holds the value of secrets-grafana-admin-password in plain text",
    ]


def test_missing_labels_are_reported(monkeypatch):
    monkeypatch.setattr(StackSettings, "labels", property(lambda self: {"app": "hydrostream"}))
    broken = mocks.run_plan("dev")
    found = label_violations(broken)
    unlabelled = {line.split(" ")[0] for line in found}
    assert unlabelled == {r.name for r in broken.resources if r.custom and labelable(r.type)}
    assert {r.name for r in broken.of_type(BUCKET) + broken.of_type(SECRET)} <= unlabelled
    assert all(line.endswith("label env=None, expected 'dev'") for line in found)
    wrong_env = vm(labels={"app": "hydrostream", "env": "prod"})
    assert label_violations(hand_built("dev", wrong_env)) == [
        f"kafka-vm ({INSTANCE}): label env='prod', expected 'dev'"]


def test_prod_without_protection_is_reported():
    unprotected = mocks.run_plan("prod", {**mocks.stack_config("prod"), "hydrostream:protect": False})
    found = protection_violations(unprotected)
    rotated = {f"secrets-{n}" for n in catalog.RECEIVER_SECRETS}
    for kind in (BUCKET, SECRET, SECRET_VERSION):
        for r in unprotected.of_type(kind):
            exempt = kind == SECRET_VERSION and r.name in rotated
            assert (f"{r.name} ({kind}): not protected" in found) is not exempt, r.name
    for bucket in unprotected.of_type(BUCKET):
        assert f"{bucket.name}: force_destroy" in found
    for disk in unprotected.of_type(DISK):
        assert f"{disk.name} ({DISK}): not protected" in found
    for instance in unprotected.of_type(INSTANCE):
        assert f"{instance.name}: no deletion protection" in found
    deletable_vm = vm(deletionProtection=False)
    disk = resource(DISK, "kafka-data", {"labels": LABELS, "size": 50})
    assert protection_violations(hand_built("prod", deletable_vm, disk)) == [
        "kafka-vm: no deletion protection", f"kafka-data ({DISK}): not protected"]


def test_a_dev_bucket_that_cannot_be_destroyed_is_reported():
    bucket = resource(BUCKET, "buckets-checkpoints", {"labels": LABELS, "forceDestroy": False})
    assert protection_violations(hand_built("dev", bucket)) == [
        "buckets-checkpoints: no force_destroy in dev"]


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_the_consumer_reads_the_write_token_and_nothing_reads_the_operator_token_off_the_vm(
        receiver_plans, stack):
    p = receiver_plans[stack]
    project = p.settings.gcp.project
    (consumer,) = [j for j in p.of_type("gcp:dataproc/job:Job")
                   if "--influx-token-secret" in j.inputs["pysparkConfig"]["args"]]
    args = consumer.inputs["pysparkConfig"]["args"]
    assert args[args.index("--influx-token-secret") + 1] == (
        f"projects/{project}/secrets/hydrostream-influxdb-write-token/versions/latest")
    for vm in p.of_type(INSTANCE):
        holds_operator = "hydrostream-influxdb-token" in vm.inputs["metadata"]["user-data"]
        assert holds_operator == (vm.inputs["labels"]["role"] == catalog.TSDB), vm.name


def test_a_data_disk_without_a_snapshot_schedule_is_reported(monkeypatch):
    # The real program with the attachment left out: each data disk is reported.
    monkeypatch.setattr(service_vm.gcp.compute, "DiskResourcePolicyAttachment", lambda *args, **kwargs: None)
    broken = mocks.run_plan("dev")
    assert sorted(snapshot_violations(broken)) == sorted(
        f"{disk.name}: 0 snapshot schedules attached, expected 1" for disk in broken.of_type(DISK))
    assert len(broken.of_type(DISK)) >= 3


def test_a_wrong_snapshot_schedule_is_reported():
    disk = resource(DISK, "kafka-data", {"name": "hydrostream-prod-kafka-data"})
    attachment = resource(SNAPSHOT_ATTACHMENT, "kafka-data-snapshots",
                          {"disk": "hydrostream-prod-kafka-data", "name": "daily"})
    schedule = resource(SNAPSHOT_POLICY, "kafka-snapshots", {"name": "daily", "region": "europe-west1",
                        "snapshotSchedulePolicy": {
                            "schedule": {"dailySchedule": {"daysInCycle": 1, "startTime": "04:00"}},
                            "retentionPolicy": {"maxRetentionDays": 3,
                                                "onSourceDiskDelete": "APPLY_RETENTION_POLICY"},
                            "snapshotProperties": {"storageLocations": "eu"}}})
    assert snapshot_violations(hand_built("prod", disk, attachment, schedule)) == [
        "kafka-data: snapshot schedule maxRetentionDays=3, expected 14",
        "kafka-data: snapshot schedule onSourceDiskDelete='APPLY_RETENTION_POLICY', expected "
        "'KEEP_AUTO_SNAPSHOTS'",
        "kafka-data: snapshot schedule storageLocations='eu', expected 'europe-west1'",
        "kafka-data: a disk restored from a snapshot would be replaced (ignore `snapshot`)",
        "kafka-snapshots: not protected",
        "kafka-data: not retained on delete",
    ]
    assert snapshot_violations(hand_built("dev", schedule, schedule))[0] == (
        "two snapshot schedules share a name (the API refuses the second)")
    orphan = resource(SNAPSHOT_ATTACHMENT, "x", {"disk": "hydrostream-prod-kafka-data", "name": "gone"})
    assert snapshot_violations(hand_built("prod", disk, orphan)) == [
        "kafka-data: attached to 'gone', which is no resource policy of the plan"]


def test_prod_snapshots_follow_the_stack_retention(receiver_plans):
    # Independently of the policy: the stack file's figure reaches every schedule, in days.
    for stack, days in (("dev", 3), ("staging", 7), ("prod", 14)):
        schedules = receiver_plans[stack].of_type(SNAPSHOT_POLICY)
        assert len(schedules) == len(receiver_plans[stack].of_type(DISK))
        policies = [s.inputs["snapshotSchedulePolicy"] for s in schedules]
        retentions = {policy["retentionPolicy"]["maxRetentionDays"] for policy in policies}
        assert retentions == {days}
        assert all(s.inputs["name"].endswith(f"-daily-{days}d") for s in schedules)
        assert {s.inputs["snapshotSchedulePolicy"]["schedule"]["dailySchedule"]["startTime"]
                for s in schedules} == {"04:00"}


def test_a_backup_bucket_others_may_write_or_an_account_with_more_rights_is_reported(monkeypatch):
    changed = {
        roles.TSDB_BACKUP.name: dataclasses.replace(
            roles.TSDB_BACKUP, buckets=((roles.Bucket.BACKUPS, roles.BucketAccess.ADMIN),),
            borrowed_by=roles.MONITORING.name),
        roles.TSDB.name: dataclasses.replace(
            roles.TSDB, buckets=((roles.Bucket.BACKUPS, roles.BucketAccess.CREATE),)),
    }
    monkeypatch.setattr(roles, "ACCOUNTS", tuple(changed.get(r.name, r) for r in roles.ACCOUNTS))
    # Every account, the borrowed one too, holds the base project roles.
    monkeypatch.setattr(roles.Role, "all_project_roles", property(lambda role: roles.BASE_PROJECT_ROLES))
    broken = mocks.run_plan("dev")
    found = backup_violations(broken)
    backup = "hydro-tsdb-backup@hydrostream-dev.iam.gserviceaccount.com"
    tsdb = "hydro-tsdb@hydrostream-dev.iam.gserviceaccount.com"
    assert found[0] == (
        f"buckets-influxdb-backups: grants [('roles/storage.objectAdmin', 'serviceAccount:{backup}'), "
        f"('roles/storage.objectCreator', 'serviceAccount:{tsdb}')], "
        f"expected object create for {backup} only")
    assert ("identity-tsdb-backup-logging.logWriter: the backup account holds roles/logging.logWriter "
            "beyond its bucket") in found
    assert found[-1].startswith("service account grants [('projects/hydrostream-dev/serviceAccounts/"
                                + backup + "', 'projects/hydrostream-dev/roles/"
                                "hydrostreamAccessTokenMinter', 'serviceAccount:hydro-monitoring@")


def test_a_backup_bucket_without_retention_that_keeps_backups_too_long_is_reported(monkeypatch):
    # The bucket as it was before issue 29: versioned, no retention policy.
    monkeypatch.setattr(storage, "VERSIONED", frozenset({roles.Bucket.ARTIFACTS, roles.Bucket.BACKUPS}))
    monkeypatch.setattr(storage, "RETAINED", frozenset())
    monkeypatch.setattr(storage, "lifecycle_rules", lambda purpose, retention_days: [])
    assert backup_violations(mocks.run_plan("prod")) == [
        "buckets-influxdb-backups: retention period None, expected 2592000",
        "buckets-influxdb-backups: retention policy locked=False in prod",
        "buckets-influxdb-backups: versioning not turned off (a retention policy refuses it)",
        "buckets-influxdb-backups: backups expire at ages [], expected 30",
    ]


def test_an_unlocked_prod_retention_or_a_locked_dev_one_is_reported():
    unlocked = mocks.run_plan("prod", {**mocks.stack_config("prod"), "hydrostream:protect": False})
    assert "buckets-influxdb-backups: retention policy locked=False in prod" in backup_violations(unlocked)
    locked = mocks.run_plan("dev", {**mocks.stack_config("dev"), "hydrostream:protect": True})
    assert backup_violations(locked) == ["buckets-influxdb-backups: retention policy locked=True in dev"]
