"""Cloud Storage buckets: Dataproc staging and temp, job artifacts, streaming checkpoints, monitoring config.

All regional (next to the cluster), uniform bucket-level access, public access prevented, access
granted per bucket to the one service account that uses it. The monitoring VM's Prometheus and
Grafana bundle lives in its own `config` bucket, so the monitoring account can read that bundle
and nothing else (job artifacts stay readable by Dataproc only). The `influxdb-backups` bucket is
versioned and written by the backup account alone, which may create objects and nothing else (no
read, overwrite or delete); backups expire after `backups.influxdb_retention_days`, and a backup
deleted or replaced by hand stays recoverable NONCURRENT_BACKUP_DAYS longer.

Prod (`settings.protect`) protects every bucket and never force-destroys one; elsewhere
`pulumi destroy` empties and deletes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.gcp import identity
from infra.settings import StackSettings

STAGING = "dataproc-staging"
TEMP = "dataproc-temp"
ARTIFACTS = "artifacts"
CHECKPOINTS = "checkpoints"
CONFIG = "config"
BACKUPS = "influxdb-backups"
PURPOSES = (STAGING, TEMP, ARTIFACTS, CHECKPOINTS, CONFIG, BACKUPS)
VERSIONED = frozenset({ARTIFACTS, BACKUPS})

# Spark history and Dataproc scratch data: the TTL Dataproc gives the temp buckets it creates itself
# (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/staging-bucket). Shorter would
# delete a long-running stream's history files while its job still runs.
TEMP_OBJECT_AGE_DAYS = 90
# Overwritten or deleted job artifacts stay recoverable this long.
NONCURRENT_ARTIFACT_DAYS = 30
NONCURRENT_BACKUP_DAYS = 7

OBJECT_ADMIN = "roles/storage.objectAdmin"
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_CREATOR = "roles/storage.objectCreator"

# purpose -> ((role whose service account is granted, bucket-level role), ...)
BINDINGS: dict[str, tuple[tuple[str, str], ...]] = {
    STAGING: ((catalog.DATAPROC, OBJECT_ADMIN),),
    TEMP: ((catalog.DATAPROC, OBJECT_ADMIN),),
    ARTIFACTS: ((catalog.DATAPROC, OBJECT_VIEWER),),
    CHECKPOINTS: ((catalog.DATAPROC, OBJECT_ADMIN),),
    CONFIG: ((catalog.MONITORING, OBJECT_VIEWER),),
    BACKUPS: ((identity.BACKUP, OBJECT_CREATOR),),
}


def bucket_name(project: str, purpose: str) -> str:
    """A globally unique bucket name: the project id (unique itself) and the purpose."""
    return f"{project}-{purpose}"


def lifecycle_rules(purpose: str, settings: StackSettings) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """Object expiry: temp objects after TEMP_OBJECT_AGE_DAYS, replaced artifact versions after a while,
    backups after the stack's backup retention and their noncurrent versions a week later."""
    if purpose == BACKUPS:
        return [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=settings.backups.influxdb_retention_days),
            ),
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    days_since_noncurrent_time=NONCURRENT_BACKUP_DAYS),
            ),
        ]
    if purpose == TEMP:
        return [gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=TEMP_OBJECT_AGE_DAYS),
        )]
    if purpose == ARTIFACTS:
        return [gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=NONCURRENT_ARTIFACT_DAYS),
        )]
    return []


@dataclass(frozen=True)
class BucketsArgs:
    settings: StackSettings
    service_account_emails: Mapping[str, pulumi.Input[str]]  # by catalog role; BINDINGS says which are used


class Buckets(pulumi.ComponentResource):
    """The environment's buckets; exposes each bucket's name as an attribute and in `names`."""

    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:storage:Buckets", name, None, opts)
        settings = args.settings
        self.names: dict[str, pulumi.Output[str]] = {}
        for purpose in PURPOSES:
            bucket = gcp.storage.Bucket(
                f"{name}-{purpose}",
                name=bucket_name(settings.gcp.project, purpose),
                location=settings.gcp.region,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                force_destroy=not settings.protect,
                versioning=gcp.storage.BucketVersioningArgs(enabled=True) if purpose in VERSIONED else None,
                lifecycle_rules=lifecycle_rules(purpose, settings) or None,
                labels={**settings.labels, "purpose": purpose},
                opts=pulumi.ResourceOptions(parent=self, protect=settings.protect,
                                            depends_on=opts.depends_on if opts else None),
            )
            grants = [
                gcp.storage.BucketIAMMember(
                    f"{name}-{purpose}-{role}-{bucket_role.rsplit('.', 1)[-1]}",
                    bucket=bucket.name,
                    role=bucket_role,
                    member=pulumi.Output.concat("serviceAccount:", args.service_account_emails[role]),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for role, bucket_role in BINDINGS[purpose]
            ]
            # Resolves once the bucket's grants exist: a cluster or VM never starts without access.
            self.names[purpose] = pulumi.Output.all(
                bucket.name, *(grant.id for grant in grants)).apply(lambda parts: parts[0])
        self.staging = self.names[STAGING]
        self.temp = self.names[TEMP]
        self.artifacts = self.names[ARTIFACTS]
        self.checkpoints = self.names[CHECKPOINTS]
        self.config = self.names[CONFIG]
        self.backups = self.names[BACKUPS]
        self.register_outputs({"names": self.names})
