"""Who acts in the environment, each with everything it may do: its service account, the project roles
that account holds, the secrets it reads or fills, and the buckets it uses.

A role's name gives its service account's id (`hydro-<name>`: the VMs and the Dataproc nodes run as that
account, and the firewall rules select them by it) and its part of resource names. `TSDB_BACKUP` runs
nowhere: the InfluxDB VM borrows it for each backup upload (infra/gcp/identity.py says why), so it holds
no project role and may only create objects in the backup bucket. Nothing else in the program keys
access by a role's name: identity, secrets and storage read it from here.

Project-level grants carry no data access: a predefined role is granted on the project only when none of
its permissions reach a bucket's objects or a secret's values (roles/dataproc.worker does: it holds
storage.objects.* on every bucket of the project, so the Dataproc nodes get `DATAPROC_NODE`, a custom
role with the agent and task permissions alone). tests/infra/test_iam_reach.py expands every grant of
the plan into permissions and checks them against the buckets and secrets listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from infra import catalog

# Every workload writes its logs and host metrics to Cloud Logging and Cloud Monitoring.
BASE_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")


class Bucket(StrEnum):
    """The environment's buckets, by purpose (infra/gcp/storage.py)."""

    STAGING = "dataproc-staging"
    TEMP = "dataproc-temp"
    ARTIFACTS = "artifacts"
    CHECKPOINTS = "checkpoints"
    CONFIG = "config"
    BACKUPS = "influxdb-backups"
    AGENTS = "broker-agents"


class BucketAccess(StrEnum):
    """What a role may do with a bucket's objects, as the bucket-level IAM role that grants it."""

    ADMIN = "roles/storage.objectAdmin"
    READ = "roles/storage.objectViewer"
    # Create only: no read, no overwrite, no delete (the backup account).
    CREATE = "roles/storage.objectCreator"


@dataclass(frozen=True)
class CustomRole:
    """A project custom role: the few permissions a role needs where every predefined role carries more."""

    role_id: str                  # camelCase, unique in the project
    title: str
    description: str
    permissions: tuple[str, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9_.]{3,64}", self.role_id):
            raise ValueError(f"custom role {self.role_id!r}: 3-64 letters, digits, `_` or `.`")
        if not self.permissions or len(set(self.permissions)) != len(self.permissions):
            raise ValueError(f"custom role {self.role_id}: give each permission once, at least one")

    def name(self, project: str) -> str:
        """The role's IAM name, as a grant names it."""
        return f"projects/{project}/roles/{self.role_id}"


# What a Dataproc cluster's VM service account needs of the Dataproc API: the node agents register and
# heartbeat (dataproc.agents.*) and lease the jobs' driver tasks and report their state
# (dataproc.tasks.*), the non-storage part of roles/dataproc.worker (tests/infra/predefined_roles.yaml).
# storage.buckets.get reads bucket metadata (the connector checks the staging, temp and checkpoint
# buckets exist), never an object; objects are granted on each bucket (`Role.buckets`).
DATAPROC_NODE = CustomRole(
    "hydrostreamDataprocNode", "Hydrostream Dataproc node",
    "Dataproc agent and task permissions of roles/dataproc.worker, without its storage.objects.*",
    ("dataproc.agents.create", "dataproc.agents.delete", "dataproc.agents.get", "dataproc.agents.list",
     "dataproc.agents.update", "dataproc.tasks.lease", "dataproc.tasks.listInvalidatedLeases",
     "dataproc.tasks.reportStatus", "storage.buckets.get"),
)
# A borrower mints the borrowed account's OAuth access tokens (iamcredentials generateAccessToken) and
# nothing else: roles/iam.serviceAccountTokenCreator would also let it sign blobs and JWTs as that
# account and mint ID tokens.
ACCESS_TOKEN_MINTER = CustomRole(
    "hydrostreamAccessTokenMinter", "Hydrostream access token minter",
    "Mint OAuth access tokens of the one service account it is granted on",
    ("iam.serviceAccounts.getAccessToken",),
)


@dataclass(frozen=True)
class Role:
    """One identity and everything it is granted; `borrowed_by` names the role that mints its tokens."""

    name: str
    description: str
    project_roles: tuple[str, ...] = ()      # predefined, beyond BASE_PROJECT_ROLES
    custom_roles: tuple[CustomRole, ...] = ()  # custom, granted on the project
    reads: tuple[str, ...] = ()              # logical secrets (catalog) it reads
    adds_versions: tuple[str, ...] = ()      # logical secrets it writes versions of, never reading them
    buckets: tuple[tuple[Bucket, BucketAccess], ...] = ()
    borrowed_by: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reads + self.adds_versions) - set(catalog.SECRETS))
        if unknown:
            raise ValueError(f"role {self.name}: {unknown} are not catalog secrets")
        if self.borrowed_by is not None and (self.project_roles or self.custom_roles):
            raise ValueError(f"role {self.name}: a borrowed account holds no project role")

    @property
    def account_id(self) -> str:
        """The service account id (6-30 characters)."""
        return f"hydro-{self.name}"

    @property
    def all_project_roles(self) -> tuple[str, ...]:
        """Every project role its account holds: none for a borrowed account, which only uploads."""
        if self.borrowed_by is not None:
            return ()
        return (*BASE_PROJECT_ROLES, *self.project_roles)


DATAPROC = Role(
    catalog.DATAPROC, "Dataproc cluster nodes running the Spark jobs",
    # Dataproc requires the agent and task permissions on the cluster's VM service account.
    custom_roles=(DATAPROC_NODE,),
    # The consumer's InfluxDB token; each job's Kafka password (the job logs in as its own Kafka user).
    reads=(catalog.INFLUXDB_WRITE_TOKEN, catalog.kafka_password(catalog.KAFKA_PRODUCER_USER),
           catalog.kafka_password(catalog.KAFKA_CONSUMER_USER)),
    buckets=((Bucket.STAGING, BucketAccess.ADMIN), (Bucket.TEMP, BucketAccess.ADMIN),
             (Bucket.ARTIFACTS, BucketAccess.READ), (Bucket.CHECKPOINTS, BucketAccess.ADMIN)),
)
BROKER = Role(
    catalog.BROKER, "Kafka broker VM",
    # The metrics agent's jar (infra/release/broker-agent.lock), which each broker checks and loads.
    buckets=((Bucket.AGENTS, BucketAccess.READ),),
    # Every Kafka user's password: the broker logs in as the admin and sets the jobs' users' credentials.
    reads=tuple(catalog.kafka_password(user) for user in catalog.KAFKA_USERS),
)
TSDB = Role(
    catalog.TSDB, "InfluxDB VM",
    # InfluxDB's setup takes the operator token; only the InfluxDB VM uses it (to create the others).
    reads=(catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN),
    # InfluxDB creates the scoped tokens; this VM stores them.
    adds_versions=tuple(token.secret for token in catalog.SCOPED_TOKENS),
)
MONITORING = Role(
    catalog.MONITORING, "Prometheus, Alertmanager and Grafana VM",
    reads=(catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN,
           catalog.PAGERDUTY_ROUTING_KEY, catalog.SMTP_PASSWORD, catalog.WEBHOOK_URL),
    # The monitoring config bundle alone: job artifacts stay readable by Dataproc only.
    buckets=((Bucket.CONFIG, BucketAccess.READ),),
)
TSDB_BACKUP = Role(
    "tsdb-backup", "InfluxDB backup uploads (object create on the backup bucket only)",
    buckets=((Bucket.BACKUPS, BucketAccess.CREATE),),
    borrowed_by=TSDB.name,
)

# Every identity, each with its own service account.
ACCOUNTS: tuple[Role, ...] = (DATAPROC, BROKER, TSDB, MONITORING, TSDB_BACKUP)


def custom_roles(accounts: tuple[Role, ...] = ACCOUNTS) -> tuple[CustomRole, ...]:
    """The custom roles the accounts are granted: each one's project roles, and the borrowers' minter."""
    found = [custom for role in accounts for custom in role.custom_roles]
    if any(role.borrowed_by is not None for role in accounts):
        found.append(ACCESS_TOKEN_MINTER)
    return tuple(dict.fromkeys(found))


def of(name: str) -> Role:
    """The role named `name` (a catalog role, e.g. a service's `role`)."""
    for role in ACCOUNTS:
        if role.name == name:
            return role
    raise KeyError(f"no role {name!r}: one of {[role.name for role in ACCOUNTS]}")


def readers(secret: str, accounts: tuple[Role, ...] = ACCOUNTS) -> tuple[Role, ...]:
    """The roles that read a logical secret."""
    return tuple(role for role in accounts if secret in role.reads)


def version_adders(secret: str, accounts: tuple[Role, ...] = ACCOUNTS) -> tuple[Role, ...]:
    """The roles that add a logical secret's versions."""
    return tuple(role for role in accounts if secret in role.adds_versions)


def bucket_grants(bucket: Bucket,
                  accounts: tuple[Role, ...] = ACCOUNTS) -> tuple[tuple[Role, BucketAccess], ...]:
    """Who may do what with a bucket's objects."""
    return tuple((role, access) for role in accounts for purpose, access in role.buckets if purpose == bucket)
