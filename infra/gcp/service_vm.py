"""A private service VM on Container-Optimized OS with its data on a separate persistent disk.

Shared by the broker, database and monitoring VMs: no public IP, the role's service account (the firewall
rules select the VM by it; it carries no network tag), Shielded VM, OS Login, and the role's cloud-config
as `user-data`. The data disk is its own resource attached under the device name the cloud-config
mounts, so replacing the VM keeps the data; prod protects the disk and turns on deletion protection.

Every data disk is snapshotted daily at SNAPSHOT_START_TIME (UTC) into the stack's region, and each
snapshot is kept `backups.snapshot_retention_days`. The schedule is a `ResourcePolicy` attached with a
`DiskResourcePolicyAttachment`: the disk's own `resource_policies` input is Beta-only (absent from the
GA provider) and could not be changed later anyway. Snapshots outlive their disk (KEEP_AUTO_SNAPSHOTS):
they are what a lost or deleted disk is restored from (docs/operations.md).

Configuration never replaces a VM (prod's deletion protection would fail the update): `metadata`
updates in place, the cloud-config reboots the VM when its `user-data` changed and re-reads the other
metadata items it names (see infra/render/cloud_init.py). Only the inputs in `REPLACING_INPUTS` replace it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.gcp.options import child_options
from infra.render.vm_inputs import DEFAULT_DATA_DISK, SecretRef
from infra.sizing import MachineShape

# An LTS milestone family: security fixes without a new Docker or kernel line. The family resolves to
# its newest image when a VM is created; the provider does not replace VMs when the family moves on.
COS_IMAGE = "projects/cos-cloud/global/images/family/cos-121-lts"
BOOT_DISK_GB = 20
DISK_TYPE = "pd-balanced"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Compute Engine starts a daily snapshot schedule on one of 00:00, 04:00, ... 20:00 UTC; 04:00 is after
# the InfluxDB backup (infra/render/cloud_init.py INFLUXDB_BACKUP_CALENDAR) and before European working hours.
SNAPSHOT_START_TIME = "04:00"
KEEP_SNAPSHOTS = "KEEP_AUTO_SNAPSHOTS"

# The inputs this component sets that make the Google provider replace a compute.Instance
# (terraform-provider-google google/services/compute/resource_compute_instance.go: ForceNew in the
# schema, or forced by CustomizeDiff: `metadata_startup_script`, which this component never sets, and
# `forceNewIfNetworkIPNotUpdatable`). `metadata`, `labels`, `machine_type` (with
# allow_stopping_for_update), `service_account`, `attached_disk`, `shielded_instance_config` and
# `deletion_protection` update in place. Paths are in the SDK's wire names.
REPLACING_INPUTS = (
    "name", "zone", "bootDisk.initializeParams", "bootDisk.deviceName",
    "networkInterfaces[0].networkIp", "networkInterfaces[0].subnetwork", "metadataStartupScript",
)


def instance_name(stack: str, role: str) -> str:
    """The Compute Engine name of a role's VM in `stack` (also its internal DNS name)."""
    return f"hydrostream-{stack}-{role}"


def snapshot_policy_name(vm_name: str, retention_days: int) -> str:
    """The snapshot schedule of a VM's data disk (one per VM, so per disk); the retention is in the name
    (see ServiceVm)."""
    return f"{vm_name}-daily-{retention_days}d"


def secret_refs(role: str, secret_ids: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[list[SecretRef]]:
    """Where the secrets a role's services read live, from logical name -> Secret Manager resource name.

    Only resource names pass here; the VM fetches the values at boot.
    """
    # An optional secret file (an alert receiver's) is there only when the stack created its secret.
    needed = sorted({s.secret for service in catalog.services_for_role(role) for s in service.secret_files
                     if not s.optional or s.secret in secret_ids})
    missing = [secret for secret in needed if secret not in secret_ids]
    if missing:
        raise ValueError(f"the {role} VM needs the Secret Manager ids of {missing}")
    return pulumi.Output.all(*(secret_ids[secret] for secret in needed)).apply(
        lambda ids: [SecretRef(secret, secret_id) for secret, secret_id in zip(needed, ids, strict=True)])


@dataclass(frozen=True)
class VmSite:
    """What every service VM of a stack shares: its region and subnet, labels, protection, snapshots."""

    region: str                             # of the reserved addresses and the snapshots
    subnet: pulumi.Input[str]
    labels: Mapping[str, str]               # the stack's; each VM adds its role
    protect: bool                           # deletion protection, `protect` and retained data disks
    snapshot_retention_days: int


@dataclass(frozen=True)
class VmHost:
    """One service VM: its name, zone, shape, data disk size and account."""

    instance: str                           # `instance_name`, numbered for brokers
    zone: str
    machine: MachineShape                   # from the sizing catalog, already validated
    disk_gb: int
    service_account_email: pulumi.Input[str]


@dataclass(frozen=True)
class ServiceVmArgs:
    role: str                               # catalog role: labels, names
    host: VmHost
    site: VmSite
    user_data: pulumi.Input[str]            # the role's #cloud-config, from infra.render.cloud_init
    # More metadata items the cloud-config reads while the VM runs (e.g. the config bundle's URL).
    metadata: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # A role with several VMs (the brokers) reserves its addresses first; None: reserved here.
    address: pulumi.Input[str] | None = None


class ServiceVm(pulumi.ComponentResource):
    """One private COS VM and its data disk; exposes `internal_ip`, `instance_name` and `zone`."""

    def __init__(self, name: str, args: ServiceVmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:compute:ServiceVm", name, None, opts)
        host, site = args.host, args.site
        zone = host.zone
        labels = {**site.labels, "role": args.role}
        vm_name = host.instance

        # A reserved internal address: a replaced VM keeps its IP, so the jobs' bootstrap servers and
        # Prometheus' targets stay valid and nothing else is replaced with it.
        network_ip = args.address if args.address is not None else gcp.compute.Address(
            f"{name}-ip",
            name=f"{vm_name}-ip",
            region=site.region,
            address_type="INTERNAL",
            subnetwork=site.subnet,
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self),
        ).address
        disk = gcp.compute.Disk(
            f"{name}-data",
            name=f"{vm_name}-data",
            zone=zone,
            size=host.disk_gb,
            type=DISK_TYPE,
            labels=labels,
            # The disk has no input from the network: it waits for what this VM waits for (the APIs).
            # A protected stack keeps its data even when someone unprotects and destroys it.
            # A disk restored from a snapshot by hand (docs/operations.md) records its `snapshot`, an
            # Optional+ForceNew provider field this program never sets: ignored, `pulumi refresh` adopts
            # the restored disk under the same name instead of planning to replace it with an empty one.
            opts=child_options(self, opts, protect=site.protect, retain_on_delete=site.protect,
                               ignore_changes=["snapshot"]),
        )
        # A new retention gives a new policy name: Pulumi creates the new policy, moves the attachment
        # (a disk holds one snapshot schedule, hence delete-before-replace) and then deletes the old
        # policy, which the API refuses while a disk still uses it.
        schedule = gcp.compute.ResourcePolicy(
            f"{name}-snapshots",
            name=snapshot_policy_name(vm_name, site.snapshot_retention_days),
            region=site.region,
            description=f"daily snapshots of {vm_name}-data, kept "
                        f"{site.snapshot_retention_days} days",
            snapshot_schedule_policy=gcp.compute.ResourcePolicySnapshotSchedulePolicyArgs(
                schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleArgs(
                    daily_schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleDailyScheduleArgs(
                        days_in_cycle=1, start_time=SNAPSHOT_START_TIME)),
                retention_policy=gcp.compute.ResourcePolicySnapshotSchedulePolicyRetentionPolicyArgs(
                    max_retention_days=site.snapshot_retention_days,
                    on_source_disk_delete=KEEP_SNAPSHOTS),
                snapshot_properties=gcp.compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesArgs(
                    labels=labels, storage_locations=site.region),
            ),
            opts=child_options(self, opts, protect=site.protect),
        )
        gcp.compute.DiskResourcePolicyAttachment(
            f"{name}-data-snapshots",
            disk=disk.name,
            zone=zone,
            name=schedule.name,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        instance = gcp.compute.Instance(
            name,
            name=vm_name,
            zone=zone,
            machine_type=host.machine.name,
            labels=labels,
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                auto_delete=True,
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                    image=COS_IMAGE, size=BOOT_DISK_GB, type=DISK_TYPE, labels=labels),
            ),
            attached_disks=[gcp.compute.InstanceAttachedDiskArgs(
                source=disk.self_link, device_name=DEFAULT_DATA_DISK.device_name, mode="READ_WRITE")],
            # No access_configs: no external IP. Outbound traffic leaves through Cloud NAT.
            network_interfaces=[gcp.compute.InstanceNetworkInterfaceArgs(
                subnetwork=site.subnet, network_ip=network_ip)],
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=host.service_account_email, scopes=[CLOUD_PLATFORM_SCOPE]),
            shielded_instance_config=gcp.compute.InstanceShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True),
            metadata={
                **args.metadata,
                "enable-oslogin": "TRUE",
                "google-logging-enabled": "true",
                "user-data": args.user_data,
            },
            # A machine type change stops and restarts the VM in place; the reboot re-applies cloud-init.
            allow_stopping_for_update=True,
            deletion_protection=site.protect,
            opts=pulumi.ResourceOptions(
                parent=self,
                # When a replacing input changes, the old VM must release the data disk (and its fixed
                # name) before the new one exists.
                delete_before_replace=True,
            ),
        )

        self.instance_name = instance.name
        self.zone = instance.zone
        self.internal_ip: pulumi.Output[str] = instance.network_interfaces.apply(
            lambda interfaces: interfaces[0].network_ip)
        self.register_outputs({"instance_name": self.instance_name, "internal_ip": self.internal_ip})
