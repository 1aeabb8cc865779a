"""Cloud Storage buckets: Dataproc staging and temp, job artifacts, streaming checkpoints, monitoring config,
InfluxDB backups and the brokers' agent.

All regional (next to the cluster), uniform bucket-level access, public access prevented, access
granted per bucket to the one service account that uses it. The monitoring VM's config bundle
(Prometheus, Alertmanager and Grafana) lives in its own `config` bucket, so the monitoring account can
read that bundle and nothing else (job artifacts stay readable by Dataproc only); likewise the brokers'
metrics agent jar lives in `broker-agents`, which the broker account alone reads. The `influxdb-backups`
bucket is written by the backup account alone (infra/roles.py), which may create objects and nothing
else (no read, overwrite or delete); backups expire after `backups.influxdb_retention_days`, and a
retention policy of the same length refuses anyone's delete or overwrite of a younger backup (locked on
prod: `protect`). A retention policy excludes Object Versioning on the same bucket (Cloud Storage,
"Bucket Lock"), so the backup bucket is not versioned; versions kept from before stay protected and
expire NONCURRENT_BACKUP_DAYS after they became noncurrent.

Prod (`protect`) protects every bucket and never force-destroys one; elsewhere
`pulumi destroy` empties and deletes them (a backup younger than its retention cannot be deleted:
`pulumi destroy` on dev or staging waits out or fails on it, see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.options import child_options, once
from infra.roles import Bucket, Role, bucket_grants

VERSIONED = frozenset({Bucket.ARTIFACTS})
# Retention policies (no delete or overwrite of a younger object) instead of versioning.
RETAINED = frozenset({Bucket.BACKUPS})
SECONDS_PER_DAY = 86_400

# Spark history and Dataproc scratch data: the TTL Dataproc gives the temp buckets it creates itself
# (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/staging-bucket). Shorter would
# delete a long-running stream's history files while its job still runs.
TEMP_OBJECT_AGE_DAYS = 90
# Overwritten or deleted job artifacts stay recoverable this long.
NONCURRENT_ARTIFACT_DAYS = 30
NONCURRENT_BACKUP_DAYS = 7


def bucket_name(project: str, purpose: str) -> str:
    """A globally unique bucket name: the project id (unique itself) and the purpose."""
    return f"{project}-{purpose}"


def lifecycle_rules(purpose: str, backup_retention_days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """Object expiry: temp objects after TEMP_OBJECT_AGE_DAYS, replaced artifact versions after a while,
    backups after the stack's backup retention and their noncurrent versions a week later."""
    if purpose == Bucket.BACKUPS:
        return [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=backup_retention_days),
            ),
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    days_since_noncurrent_time=NONCURRENT_BACKUP_DAYS),
            ),
        ]
    if purpose == Bucket.TEMP:
        return [gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=TEMP_OBJECT_AGE_DAYS),
        )]
    if purpose == Bucket.ARTIFACTS:
        return [gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=NONCURRENT_ARTIFACT_DAYS),
        )]
    return []


def versioning(purpose: str) -> gcp.storage.BucketVersioningArgs | None:
    """Versioning on for VERSIONED, explicitly off where a retention policy needs it off, else unset."""
    if purpose in VERSIONED:
        return gcp.storage.BucketVersioningArgs(enabled=True)
    if purpose in RETAINED:
        return gcp.storage.BucketVersioningArgs(enabled=False)
    return None


@dataclass(frozen=True)
class BucketsArgs:
    project: str
    region: str
    labels: Mapping[str, str]
    protect: bool                 # prod: protected, never force-destroyed, backup retention locked
    backup_retention_days: int    # how long an InfluxDB backup is kept
    accounts: tuple[Role, ...]    # infra.roles.ACCOUNTS: who may use which bucket
    service_account_emails: Mapping[str, pulumi.Input[str]]  # by role name


class Buckets(pulumi.ComponentResource):
    """The environment's buckets; exposes each bucket's name as an attribute and in `names`."""

    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:storage:Buckets", name, None, opts)
        self.names: dict[str, pulumi.Output[str]] = {}
        for purpose in Bucket:
            bucket = gcp.storage.Bucket(
                f"{name}-{purpose}",
                name=bucket_name(args.project, purpose),
                location=args.region,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                force_destroy=not args.protect,
                versioning=versioning(purpose),
                retention_policy=gcp.storage.BucketRetentionPolicyArgs(
                    retention_period=str(args.backup_retention_days * SECONDS_PER_DAY),
                    is_locked=args.protect,
                ) if purpose in RETAINED else None,
                lifecycle_rules=lifecycle_rules(purpose, args.backup_retention_days) or None,
                labels={**args.labels, "purpose": str(purpose)},
                opts=child_options(self, opts, protect=args.protect),
            )
            grants = [
                gcp.storage.BucketIAMMember(
                    f"{name}-{purpose}-{role.name}-{access.rsplit('.', 1)[-1]}",
                    bucket=bucket.name,
                    role=str(access),
                    member=pulumi.Output.concat("serviceAccount:", args.service_account_emails[role.name]),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for role, access in bucket_grants(purpose, args.accounts)
            ]
            # Resolves once the bucket's grants exist: a cluster or VM never starts without access.
            self.names[str(purpose)] = once(bucket.name, *(grant.id for grant in grants))
        self.staging = self.names[Bucket.STAGING]
        self.temp = self.names[Bucket.TEMP]
        self.artifacts = self.names[Bucket.ARTIFACTS]
        self.checkpoints = self.names[Bucket.CHECKPOINTS]
        self.config = self.names[Bucket.CONFIG]
        self.backups = self.names[Bucket.BACKUPS]
        self.agents = self.names[Bucket.AGENTS]
        self.register_outputs({"names": self.names})
