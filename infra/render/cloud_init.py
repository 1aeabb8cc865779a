"""Cloud-init for the service VMs: the catalog's containers as systemd units on Container-Optimized OS.

Pure functions and frozen dataclasses, no Pulumi resources: callers resolve Outputs with `.apply`
and pass plain values. Each role builder returns the whole `#cloud-config` document, the value of
the VM's `user-data` metadata key:

    broker_cloud_init(heap_mb, topics, node=None, data_disk=DEFAULT_DATA_DISK) -> str
    tsdb_cloud_init(org, bucket, retention, memory_limit_mb, secrets, scoped_tokens=(),
                    backup=None, data_disk=DEFAULT_DATA_DISK) -> str
    monitoring_cloud_init(bundle_volumes, secrets, config_files=(), data_disk=DEFAULT_DATA_DISK) -> str

A change of this document is applied in place, never by replacing the VM (prod's deletion protection
would refuse that): Pulumi updates the `user-data` metadata value in place and
`hydrostream-user-data-watch.timer` reboots the VM when the value differs from the copy cloud-init
applied at boot (at most once per document). Configuration that changes often (dashboards, alert
rules, scrape targets, IPs) is not in this document at all: see the monitoring role below.

COS applies cloud-init on every boot (its /etc is a tmpfs), so the units and scripts below are
rewritten and started on each boot, and every step is idempotent:
- `hydrostream-data-disk`: the persistent disk attached with `DataDisk.device_name` is mounted at
  `DataDisk.mount_path`, formatted ext4 only when blkid finds nothing on it, never reformatted.
- `hydrostream-host-firewall`: the role's catalog ports are accepted by the host firewall (COS
  drops every incoming connection but SSH); the VPC firewall rules decide who may connect.
- `hydrostream-<service>`: one unit per catalog service of the role, `docker run --rm --network
  host` with the catalog's image, environment, user, command and health check, `Restart=always`.
  Volumes are folders of the data disk (`<mount_path>/<volume name>`). Before each start the
  service's secrets are fetched from Secret Manager (curl with the metadata server's token; COS
  has no gcloud) into `SECRETS_DIR/<service>/<secret>` on the host's /run tmpfs, mode 0400, owned
  by the container's user, and mounted read-only at the catalog's path. Only secret resource names
  (`projects/P/secrets/S`) are in this document; values never are.
- broker: Kafka advertises `<internal IP>:<port>` for its non-controller listeners; the IP is read
  from the metadata server before each start (host-env.sh), never written here. The image formats
  its KRaft storage only when it is not formatted yet (the catalog fixes CLUSTER_ID), so the log
  directory on the data disk survives reboots and VM replacement. A `KafkaNode` places the broker
  in a larger cluster: its node id, `broker.rack`, the controller quorum and the replication of
  the internal topics (`catalog.KAFKA_CLUSTER_ENV`). `hydrostream-kafka-topics` creates the topics
  with `--if-not-exists` and their replication factor, converges retention.ms and
  min.insync.replicas, and fails when an existing topic has fewer replicas than asked.
- tsdb: the InfluxDB image runs its setup (org, bucket, retention, admin password and token from
  the `*_FILE` secrets) only while its bolt database is missing: once the data disk holds it,
  reboots and new VMs on the same disk skip setup. Changing org, bucket, retention or the token
  afterwards does not alter an existing database. Then `hydrostream-influxdb-tokens` creates the
  scoped tokens (`catalog.SCOPED_TOKENS`: the consumer's write token, Grafana's read token) inside
  the container with the operator token, reusing one with the same description, and adds each as a
  version of its secret (the VM's account may add versions there, not read them); the operator
  token never leaves the VM. With an `InfluxBackup`, `hydrostream-influxdb-backup.timer` runs
  `influx backup` (everything: data and metadata) inside the container daily at INFLUXDB_BACKUP_CALENDAR
  into a folder of the data volume, tars it and uploads it to the backup bucket as the backup account
  (the VM's account may only mint that account's tokens); `influxdb-restore.sh` is shipped for
  scripts/restore-influxdb.sh, which runs `influxdb_restore_command` over IAP SSH.
- monitoring: config volumes (e.g. Prometheus config and rules, Grafana provisioning and
  dashboards) are filled at boot by `hydrostream-config` from a `ConfigBundle` (a .tar.gz in Cloud
  Storage whose top-level folders are volume names) and `ConfigFile`s carried inline (written over
  the bundle's files), and mounted read-only. The bundle's URL is the VM's `CONFIG_BUNDLE_KEY`
  metadata value (`ConfigBundle.media_url`), not part of this document: `hydrostream-config-refresh.timer`
  re-reads it every `CONFIG_REFRESH_S` and, when it names a new bundle, refreshes the volumes and
  restarts the containers that mount them. A bundle that cannot be downloaded leaves an earlier
  boot's config in place; with none, the containers restart until the download succeeds.
A container whose data disk is not mounted never starts: below the mount point is a tmpfs.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
import yaml
from hydrostream_jobs import contract

from infra import catalog

TEMPLATES = Path(__file__).resolve().parent / "templates"

# GCE refuses a metadata value larger than this.
METADATA_VALUE_LIMIT_BYTES = 256 * 1024

BIN_DIR = "/etc/hydrostream/bin"
UNIT_DIR = "/etc/systemd/system"
INLINE_CONFIG_DIR = "/etc/hydrostream/config"
HOST_ENV_FILE = "/run/hydrostream/host.env"
# Written by host-env.sh into HOST_ENV_FILE; systemd expands it in the units that read that file.
HOST_INTERNAL_IP = "${HOST_INTERNAL_IP}"

DOCKER = "/usr/bin/docker"
BASH = "/bin/bash"
STOP_TIMEOUT_S = 60

DATA_DISK_UNIT = "hydrostream-data-disk.service"
FIREWALL_UNIT = "hydrostream-host-firewall.service"
CONFIG_UNIT = "hydrostream-config.service"
KAFKA_TOPICS_UNIT = "hydrostream-kafka-topics.service"
INFLUXDB_TOKENS_UNIT = "hydrostream-influxdb-tokens.service"
# On the data disk beside the database: which token each scoped secret already holds.
INFLUXDB_TOKENS_STATE = "influxdb-tokens"
# Below container.service.j2's TimeoutStartSec (300): then the unit fails and restarts.
SCOPED_TOKEN_WAIT_S = 240
_SCOPED = frozenset(token.secret for token in catalog.SCOPED_TOKENS)
INFLUXDB_BACKUP_UNIT = "hydrostream-influxdb-backup.service"
# Daily, UTC; before the 04:00 disk snapshots (infra/gcp/service_vm.py), off the hour other jobs pick.
INFLUXDB_BACKUP_CALENDAR = "*-*-* 02:17:00 UTC"
# Below the InfluxDB data volume (so on the data disk, never the boot disk): where a backup is staged
# before its upload and where a restore is unpacked. Two folders: a backup never deletes a restore's.
INFLUXDB_DATA_VOLUME = "influxdb-data"  # the catalog volume with InfluxDB's engine and bolt database
INFLUXDB_BACKUP_FOLDER = "hydrostream-backup"
INFLUXDB_RESTORE_FOLDER = "hydrostream-restore"
# A backup of a large database takes long; systemd stops one that hangs.
INFLUXDB_BACKUP_TIMEOUT_S = 6 * 3600
CONFIG_REFRESH_UNIT = "hydrostream-config-refresh.service"
USER_DATA_WATCH_UNIT = "hydrostream-user-data-watch.service"

# The instance metadata key that holds the config bundle's media URL (outside user-data, see above).
CONFIG_BUNDLE_KEY = "hydrostream-config-bundle"
CONFIG_REFRESH_S = 120
USER_DATA_WATCH_S = 60
# Where cloud-init keeps the raw user-data it applied this boot (cloudinit.helpers: userdata_raw).
CLOUD_INIT_USER_DATA = "/var/lib/cloud/instance/user-data.txt"
# On COS's stateful /var: survives the reboot it records.
USER_DATA_STATE = "/var/lib/hydrostream/rebooted-for-user-data"

# Host mounts follow mounts the host makes later (a disk attached after boot), as node-exporter's
# README runs it; COS's / is a shared mount, so `rslave` works here (Docker Desktop refuses it).
HOST_MOUNT_PROPAGATION = "rslave"

_SECRET_ID = re.compile(r"projects/[A-Za-z0-9._:-]+/secrets/[A-Za-z0-9_-]{1,255}")
_DEVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_GCS_URI = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(\S+)")
_RELATIVE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_INFLUX_DURATION = re.compile(r"0|([0-9]+(ns|us|ms|s|m|h|d|w))+")
_NUMERIC_USER = re.compile(r"[0-9]+(:[0-9]+)?")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_ACCOUNT_EMAIL = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com")
_HOST_PORT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}")
_RACK = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Catalog environment values a renderer may replace (the rest is the catalog's alone).
_CLUSTER_ENV = {catalog.KAFKA.name: frozenset(catalog.KAFKA_CLUSTER_ENV)}


def unit_name(service: catalog.Service) -> str:
    """The systemd unit that runs a catalog service."""
    return f"hydrostream-{service.name}.service"


@dataclass(frozen=True)
class DataDisk:
    """The persistent disk that holds the services' volumes, as attached to the VM."""

    device_name: str = "data"  # the attached disk's device_name
    mount_path: str = "/mnt/disks/data"  # COS mounts disks under /mnt/disks (writable, executable)

    def __post_init__(self) -> None:
        if not _DEVICE_NAME.fullmatch(self.device_name):
            raise ValueError(f"data disk device_name {self.device_name!r}: use lowercase letters, digits, -")
        if not re.fullmatch(r"/mnt/disks/[a-z0-9][a-z0-9_-]*", self.mount_path):
            raise ValueError(f"data disk mount_path {self.mount_path!r}: must be a folder of /mnt/disks")

    @property
    def device(self) -> str:
        """The stable by-id path GCE gives the disk attached with `device_name`."""
        return f"/dev/disk/by-id/google-{self.device_name}"

    def volume_path(self, volume: catalog.Volume | str) -> str:
        """The host folder that holds one volume."""
        name = volume.name if isinstance(volume, catalog.Volume) else volume
        return f"{self.mount_path}/{name}"


DEFAULT_DATA_DISK = DataDisk()


@dataclass(frozen=True)
class SecretRef:
    """Where one catalog secret lives: its Secret Manager resource name, never its value."""

    secret: str  # logical name, one of catalog.SECRETS
    secret_id: str  # projects/P/secrets/S

    def __post_init__(self) -> None:
        if self.secret not in catalog.SECRETS:
            raise ValueError(f"unknown secret {self.secret!r}; known: {', '.join(catalog.SECRETS)}")
        if not _SECRET_ID.fullmatch(self.secret_id):
            # The rejected string is not echoed: it may be a secret value passed by mistake.
            raise ValueError(f"secret {self.secret!r}: secret_id must be a name like projects/P/secrets/S")


@dataclass(frozen=True)
class TopicSpec:
    """A Kafka topic the broker VM creates."""

    name: str
    partitions: int
    retention_ms: int  # -1: keep forever
    replication_factor: int = 1
    min_insync_replicas: int = 1

    def __post_init__(self) -> None:
        if not _TOPIC_NAME.fullmatch(self.name) or self.name in (".", ".."):
            raise ValueError(f"topic name {self.name!r}: use up to 249 of [A-Za-z0-9._-]")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name!r}: partitions must be at least 1, got {self.partitions}")
        if self.retention_ms < 1 and self.retention_ms != -1:
            raise ValueError(f"topic {self.name!r}: retention_ms must be > 0 or -1, got {self.retention_ms}")
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(f"topic {self.name!r}: min_insync_replicas must be from 1 to the replication "
                             f"factor {self.replication_factor}, got {self.min_insync_replicas}")

    @property
    def spec(self) -> str:
        """The topic as kafka-topics.sh takes it: NAME:PARTITIONS:RETENTION_MS:REPLICATION:MIN_ISR."""
        return (f"{self.name}:{self.partitions}:{self.retention_ms}:"
                f"{self.replication_factor}:{self.min_insync_replicas}")


@dataclass(frozen=True)
class KafkaNode:
    """One broker's place in its KRaft cluster (every node is a broker and a controller)."""

    node_id: int
    rack: str                   # `broker.rack`: the VM's zone, so replicas spread across zones
    voters: tuple[str, ...]     # every controller's host:port, node 1 first (node ids are 1..n)
    min_insync_replicas: int

    def __post_init__(self) -> None:
        if not 1 <= self.node_id <= len(self.voters):
            raise ValueError(f"Kafka node id {self.node_id}: must be from 1 to the {len(self.voters)} voters")
        if len(set(self.voters)) != len(self.voters) or not all(_HOST_PORT.fullmatch(v) for v in self.voters):
            raise ValueError(f"Kafka voters {self.voters!r}: distinct host:port addresses")
        if not _RACK.fullmatch(self.rack):
            raise ValueError(f"Kafka rack {self.rack!r}: a zone name such as europe-west1-b")
        if not 1 <= self.min_insync_replicas <= max(1, len(self.voters) - 1):
            raise ValueError(f"Kafka min_insync_replicas {self.min_insync_replicas}: from 1 to one fewer "
                             f"than the {len(self.voters)} brokers (1 for a single broker)")

    @property
    def env(self) -> dict[str, str]:
        """The node's `catalog.KAFKA_CLUSTER_ENV` values and its rack."""
        replicas = str(len(self.voters))
        return {
            "KAFKA_NODE_ID": str(self.node_id),
            "KAFKA_BROKER_RACK": self.rack,
            "KAFKA_CONTROLLER_QUORUM_VOTERS": ",".join(
                f"{node_id}@{voter}" for node_id, voter in enumerate(self.voters, start=1)),
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": replicas,
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": replicas,
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(self.min_insync_replicas),
            "KAFKA_DEFAULT_REPLICATION_FACTOR": replicas,
            "KAFKA_MIN_INSYNC_REPLICAS": str(self.min_insync_replicas),
        }


@dataclass(frozen=True)
class ConfigBundle:
    """A .tar.gz in Cloud Storage whose top-level folders are config volumes, unpacked at boot."""

    gcs_uri: str  # gs://bucket/object; name the object by its content digest so a VM gets one version
    volumes: tuple[str, ...]  # the catalog volumes it fills

    def __post_init__(self) -> None:
        if not _GCS_URI.fullmatch(self.gcs_uri):
            raise ValueError(f"config bundle {self.gcs_uri!r}: must be gs://BUCKET/OBJECT")
        if not self.volumes:
            raise ValueError(f"config bundle {self.gcs_uri!r}: name the volumes it fills")

    @property
    def media_url(self) -> str:
        """The Cloud Storage JSON API URL that downloads the object."""
        match = _GCS_URI.fullmatch(self.gcs_uri)
        assert match is not None
        bucket, name = match.groups()
        return f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"


@dataclass(frozen=True)
class InfluxBackup:
    """Where the InfluxDB VM uploads its daily backup, and the account it uploads as."""

    bucket: str  # a bucket name, not gs://
    account_email: str  # the backup service account (object create only on `bucket`)

    def __post_init__(self) -> None:
        if not _BUCKET_NAME.fullmatch(self.bucket):
            raise ValueError(f"backup bucket {self.bucket!r}: must be a bucket name (no gs://)")
        if not _ACCOUNT_EMAIL.fullmatch(self.account_email):
            raise ValueError(f"backup account {self.account_email!r}: must be a service account email")


@dataclass(frozen=True)
class ConfigFile:
    """A small config file carried inline, written into a config volume at `path` (relative)."""

    volume: str
    path: str
    content: str

    def __post_init__(self) -> None:
        if not _RELATIVE_PATH.fullmatch(self.path) or ".." in self.path.split("/"):
            raise ValueError(f"config file {self.path!r}: must be a relative path of [A-Za-z0-9._-] parts")


@dataclass
class _Document:
    """One VM's cloud-config while it is assembled: its units and the scripts they call."""

    data_disk: DataDisk
    units: dict[str, str] = field(default_factory=dict)
    scripts: set[str] = field(default_factory=set)
    enabled: list[str] = field(default_factory=list)

    def script(self, name: str, *args: str) -> list[str]:
        """A command line that runs one of the template scripts, which is then shipped."""
        self.scripts.add(name)
        # Ship the library the script sources.
        if name != "gce-metadata.sh" and "gce-metadata.sh" in (TEMPLATES / name).read_text():
            self.scripts.add("gce-metadata.sh")
        return [BASH, f"{BIN_DIR}/{name}", *args]

    def oneshot(self, unit: str, description: str, command: list[str], *, requires: Sequence[str] = (),
                wants: Sequence[str] = (), timeout_s: int = 300, network: bool = True,
                once_per_boot: bool = True) -> None:
        """A unit that runs `command` once per boot (one that needs the network retries on failure),
        or, with `once_per_boot=False`, each time a timer starts it."""
        self.units[unit] = _render_template(
            "oneshot.service.j2", description=description, requires=list(requires), wants=list(wants),
            timeout_s=timeout_s, network=network, once_per_boot=once_per_boot,
            exec_start=_systemd_command(command))

    def calendar_timer(self, unit: str, description: str, calendar: str) -> None:
        """A timer that starts `unit` at the systemd calendar time `calendar`, catching up after downtime."""
        timer = unit.removesuffix(".service") + ".timer"
        self.units[timer] = _render_template("calendar.timer.j2", description=description, unit=unit,
                                             calendar=calendar)
        self.enabled.append(timer)

    def timer(self, unit: str, description: str, every_s: int) -> None:
        """A timer that starts `unit` every `every_s` seconds, the first time `every_s` after boot."""
        timer = unit.removesuffix(".service") + ".timer"
        self.units[timer] = _render_template("timer.j2", description=description, unit=unit,
                                             first_s=every_s, every_s=every_s)
        self.enabled.append(timer)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


class _BlockDumper(yaml.SafeDumper):
    """Dumps multi-line strings as literal blocks so units and scripts read as files."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _represent_str)


def _to_yaml(value: object, flow: bool = False) -> str:
    return yaml.dump(value, Dumper=_BlockDumper, sort_keys=False, width=1_000_000,
                     default_flow_style=None if flow else False).rstrip("\n")


_environment.filters["to_yaml"] = _to_yaml


def _render_template(name: str, **values: object) -> str:
    return _environment.get_template(name).render(**values)


def _systemd_word(word: str, expand: Iterable[str] = ()) -> str:
    """One argument of a systemd command line, quoted; `$` and `%` are literal except `expand`."""
    if "\n" in word:
        raise ValueError(f"a command-line argument cannot hold a newline: {word!r}")
    escaped = word.replace("%", "%%").replace("$", "$$")
    for variable in expand:
        escaped = escaped.replace(variable.replace("$", "$$"), variable)
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _systemd_command(words: Sequence[str], expand: Iterable[str] = ()) -> str:
    return " ".join(_systemd_word(word, expand) for word in words)


def _owner(service: catalog.Service) -> str:
    """uid:gid that owns a service's folders and secret files on the host."""
    if service.user is None:
        return "0:0"
    if not _NUMERIC_USER.fullmatch(service.user):
        raise ValueError(f"service {service.name!r}: user {service.user!r} must be a numeric uid[:gid]")
    return service.user if ":" in service.user else f"{service.user}:{service.user}"


def _health_command(service: catalog.Service) -> str:
    kind, *args = service.health_check.command
    if kind == "CMD-SHELL" and len(args) == 1:
        return args[0]
    if kind == "CMD" and args:
        return shlex.join(args)
    raise ValueError(f"service {service.name!r}: unsupported health check {service.health_check.command!r}")


def secret_host_path(service: catalog.Service, secret: str) -> str:
    """Where a service's copy of a secret lives on the host (a tmpfs), mounted read-only."""
    return f"{catalog.SECRETS_DIR}/{service.name}/{secret}"


def _container_unit(doc: _Document, service: catalog.Service, secrets: Mapping[str, SecretRef],
                    extra_env: Mapping[str, str], config_volumes: frozenset[str]) -> str:
    env = dict(service.env)
    for key, value in extra_env.items():
        if key in env and key not in _CLUSTER_ENV.get(service.name, ()):
            raise ValueError(f"service {service.name!r}: {key} is set by the catalog")
        env[key] = value
    check = service.health_check
    lines = [[DOCKER, "run", "--rm", "--name", service.name, "--network", "host"]]
    if service.user is not None:
        lines.append(["--user", service.user])
    host_access = ["--pid", "host"] if service.host_pid else []
    for mount in service.host_mounts:
        host_access += ["--volume", f"{mount.source}:{mount.target}:ro,{HOST_MOUNT_PROPAGATION}"]
    if host_access:
        lines.append(host_access)
    lines += [["--env", f"{key}={value}"] for key, value in env.items()]
    # An optional secret file without a SecretRef (a receiver the stack does not use) is left out.
    secret_files = [s for s in service.secret_files if not s.optional or s.secret in secrets]
    lines += [["--env", f"{s.env}={s.container_path}"] for s in secret_files if s.env]
    lines += [["--volume", f"{doc.data_disk.volume_path(v)}:{v.container_path}:"
               + ("ro" if v.name in config_volumes else "rw")] for v in service.volumes]
    lines += [["--volume", f"{secret_host_path(service, s.secret)}:{s.container_path}:ro"]
              for s in secret_files]
    lines += [
        ["--health-cmd", _health_command(service)],
        ["--health-interval", f"{check.interval_s}s", "--health-timeout", f"{check.timeout_s}s",
         "--health-retries", str(check.retries), "--health-start-period", f"{check.start_period_s}s"],
        [service.image, *service.command],
    ]

    uses_host_env = any(HOST_INTERNAL_IP in value for value in env.values())
    expand = [HOST_INTERNAL_IP] if uses_host_env else []
    data_volumes = [doc.data_disk.volume_path(v) for v in service.volumes if v.name not in config_volumes]
    pre = []
    if uses_host_env:
        pre.append(doc.script("host-env.sh", HOST_ENV_FILE))
    if data_volumes:
        pre.append(doc.script("volume-dirs.sh", doc.data_disk.mount_path, _owner(service), *data_volumes))
    for secret_file in secret_files:
        if secret_file.secret not in secrets:
            raise ValueError(f"service {service.name!r} needs secret {secret_file.secret!r}: no SecretRef")
        # A scoped token appears once InfluxDB has created it: wait within the unit's start timeout.
        wait = [str(SCOPED_TOKEN_WAIT_S)] if secret_file.secret in _SCOPED else []
        pre.append(doc.script("fetch-secret.sh", secrets[secret_file.secret].secret_id,
                              secret_host_path(service, secret_file.secret), _owner(service), *wait))
    # A failed requirement stops the container for good (no data disk: never write to the tmpfs
    # below it); a wanted one may fail and retry while the container restarts until it can run.
    requires = ["docker.service", FIREWALL_UNIT] + ([DATA_DISK_UNIT] if service.volumes else [])
    wants = [CONFIG_UNIT] if any(v.name in config_volumes for v in service.volumes) else []
    return _render_template(
        "container.service.j2",
        service=service,
        docker=DOCKER,
        requires=requires,
        wants=wants,
        # Optional when read for the ExecStartPre that writes it; ExecStart reads it afterwards.
        environment_files=[f"-{HOST_ENV_FILE}"] if uses_host_env else [],
        stop_timeout_s=STOP_TIMEOUT_S,
        exec_start_pre=[_systemd_command(command) for command in pre],
        docker_run_lines=[_systemd_command(line, expand) for line in lines],
    )


def _render(role: str, data_disk: DataDisk, *, secrets: Sequence[SecretRef] = (),
            extra_env: Mapping[str, Mapping[str, str]] | None = None,
            bundle_volumes: Sequence[str] = (), config_files: Sequence[ConfigFile] = (),
            topics: Sequence[TopicSpec] = (), scoped_tokens: Sequence[SecretRef] = (),
            influxdb_org: str = "", influxdb_bucket: str = "", backup: InfluxBackup | None = None) -> str:
    """The cloud-config of one role: every catalog service of the role, plus what they need."""
    services = catalog.services_for_role(role)
    extra_env = extra_env or {}
    by_secret = {ref.secret: ref for ref in secrets}
    needed = {s.secret for service in services for s in service.secret_files}
    if len(by_secret) != len(secrets) or set(by_secret) - needed:
        raise ValueError(f"role {role!r} takes one SecretRef each for {sorted(needed)}, got "
                         f"{[ref.secret for ref in secrets]}")
    role_volumes = {v.name for service in services for v in service.volumes}
    config_volumes = frozenset((*bundle_volumes, *(f.volume for f in config_files)))
    if config_volumes - role_volumes:
        raise ValueError(f"role {role!r} has no volume {sorted(config_volumes - role_volumes)}; "
                         f"its volumes: {sorted(role_volumes)}")
    unknown = set(extra_env) - {s.name for s in services}
    if unknown:
        raise ValueError(f"role {role!r} runs no service {sorted(unknown)}")

    doc = _Document(data_disk=data_disk)
    ports = sorted({(p.number, p.protocol) for service in services for p in service.ports})
    doc.oneshot(FIREWALL_UNIT, "accept the role's ports in the host firewall",
                doc.script("open-host-ports.sh", *(f"{number}/{protocol}" for number, protocol in ports)),
                network=False)
    if role_volumes:
        doc.oneshot(DATA_DISK_UNIT, f"mount the data disk at {data_disk.mount_path}",
                    doc.script("mount-data-disk.sh", data_disk.device, data_disk.mount_path), network=False)
    inline_files = {f"{INLINE_CONFIG_DIR}/{f.volume}/{f.path}": f.content for f in config_files}
    if len(inline_files) != len(config_files):
        raise ValueError("two config files have the same volume and path")
    bundle = f"metadata:{CONFIG_BUNDLE_KEY}" if bundle_volumes else "-"
    fetch_config = [data_disk.mount_path, INLINE_CONFIG_DIR, bundle, *sorted(config_volumes)]
    if config_volumes:
        doc.oneshot(CONFIG_UNIT, "fill the config volumes", doc.script("fetch-config.sh", *fetch_config),
                    requires=[DATA_DISK_UNIT])
    if bundle_volumes:
        readers = [unit_name(s) for s in services if any(v.name in config_volumes for v in s.volumes)]
        restart = [word for unit in readers for word in ("--restart", unit)]
        doc.oneshot(CONFIG_REFRESH_UNIT, "apply a new config bundle named in metadata",
                    doc.script("fetch-config.sh", *restart, *fetch_config),
                    requires=[DATA_DISK_UNIT, CONFIG_UNIT], once_per_boot=False)
        doc.timer(CONFIG_REFRESH_UNIT, "look for a new config bundle", CONFIG_REFRESH_S)
    doc.oneshot(USER_DATA_WATCH_UNIT, "reboot to apply a changed user-data",
                doc.script("watch-user-data.sh", CLOUD_INIT_USER_DATA, USER_DATA_STATE), once_per_boot=False)
    doc.timer(USER_DATA_WATCH_UNIT, "compare the user-data metadata with the applied one", USER_DATA_WATCH_S)
    for service in services:
        unit = _container_unit(doc, service, by_secret, extra_env.get(service.name, {}), config_volumes)
        doc.units[unit_name(service)] = unit
        doc.enabled.append(unit_name(service))
    if topics:
        doc.oneshot(KAFKA_TOPICS_UNIT, "create the Kafka topics",
                    doc.script("create-kafka-topics.sh", catalog.KAFKA.name,
                               f"localhost:{catalog.KAFKA.port('kafka')}",
                               *(topic.spec for topic in topics)),
                    wants=[unit_name(catalog.KAFKA)], timeout_s=600)
        doc.scripts.add("kafka-topics.sh")  # what create-kafka-topics.sh runs inside the broker
        doc.enabled.append(KAFKA_TOPICS_UNIT)
    if scoped_tokens:
        influxdb = catalog.INFLUXDB
        by_name = {ref.secret: ref.secret_id for ref in scoped_tokens}
        specs = [f"{t.access}:{t.description}:{by_name[t.secret]}" for t in catalog.SCOPED_TOKENS]
        operator = _operator_token_path()
        doc.oneshot(INFLUXDB_TOKENS_UNIT, "create the scoped InfluxDB tokens into Secret Manager",
                    doc.script("create-influxdb-tokens.sh", influxdb.name, operator,
                               influxdb.env["DOCKER_INFLUXDB_INIT_USERNAME"], influxdb_org, influxdb_bucket,
                               data_disk.volume_path(INFLUXDB_TOKENS_STATE),
                               *specs),
                    requires=[DATA_DISK_UNIT], wants=[unit_name(influxdb)], timeout_s=600)
        doc.scripts.add("influxdb-token.sh")  # what create-influxdb-tokens.sh runs inside InfluxDB
        doc.enabled.append(INFLUXDB_TOKENS_UNIT)
    if backup is not None:
        influxdb = catalog.INFLUXDB
        host_dir, container_dir = _influxdb_folder(data_disk, INFLUXDB_BACKUP_FOLDER)
        doc.oneshot(INFLUXDB_BACKUP_UNIT, "back up InfluxDB to the backup bucket",
                    doc.script("influxdb-backup.sh", influxdb.name, _operator_token_path(), host_dir,
                               container_dir, backup.bucket, backup.account_email,
                               # Where node-exporter reads the last good backup's time (an alert).
                               data_disk.volume_path(catalog.NODE_EXPORTER_TEXTFILE)),
                    requires=[DATA_DISK_UNIT, unit_name(influxdb)], timeout_s=INFLUXDB_BACKUP_TIMEOUT_S,
                    once_per_boot=False)
        doc.calendar_timer(INFLUXDB_BACKUP_UNIT, "back up InfluxDB daily", INFLUXDB_BACKUP_CALENDAR)
        # What the backup and the restore run inside the container.
        doc.scripts.add("influx-archive.sh")
        doc.scripts.add(influxdb_restore_command(data_disk)[1].rsplit("/", 1)[1])

    write_files = [_write_file(f"{BIN_DIR}/{name}", "0755", (TEMPLATES / name).read_text())
                   for name in sorted(doc.scripts)]
    write_files += [_write_file(f"{UNIT_DIR}/{unit}", "0644", text) for unit, text in doc.units.items()]
    write_files += [_write_file(path, "0644", content) for path, content in inline_files.items()]
    runcmd = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "--no-block", *doc.enabled]]
    document = _render_template("cloud-config.yaml.j2", role=role, data_disk=data_disk,
                                write_files=write_files, runcmd=runcmd)
    size = len(document.encode())
    if size > METADATA_VALUE_LIMIT_BYTES:
        raise ValueError(f"the {role} cloud-config is {size} bytes, over GCE's metadata value limit "
                         f"of {METADATA_VALUE_LIMIT_BYTES}: move config files into the bundle")
    return document


def _operator_token_path() -> str:
    """Where the InfluxDB container reads the operator token (a catalog secret file)."""
    return next(f.container_path for f in catalog.INFLUXDB.secret_files if f.secret == catalog.INFLUXDB_TOKEN)


def _influxdb_folder(data_disk: DataDisk, folder: str) -> tuple[str, str]:
    """A folder below the InfluxDB data volume: (its host path, the same folder in the container)."""
    found = [v for v in catalog.INFLUXDB.volumes if v.name == INFLUXDB_DATA_VOLUME]
    if len(found) != 1:
        raise ValueError(f"the InfluxDB service has no volume {INFLUXDB_DATA_VOLUME!r} to stage backups in")
    data = found[0]
    return f"{data_disk.volume_path(data)}/{folder}", f"{data.container_path}/{folder}"


def influxdb_restore_command(data_disk: DataDisk = DEFAULT_DATA_DISK) -> list[str]:
    """The InfluxDB VM's restore command, without its NAME and mode (see influxdb-restore.sh)."""
    host_dir, container_dir = _influxdb_folder(data_disk, INFLUXDB_RESTORE_FOLDER)
    return [BASH, f"{BIN_DIR}/influxdb-restore.sh", catalog.INFLUXDB.name, _operator_token_path(),
            host_dir, container_dir]


def _write_file(path: str, permissions: str, content: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def broker_cloud_init(heap_mb: int, topics: Sequence[TopicSpec], node: KafkaNode | None = None,
                      data_disk: DataDisk = DEFAULT_DATA_DISK) -> str:
    """Kafka (a KRaft broker+controller: the catalog's single node, or `node` of a larger cluster) with
    its exporter and node-exporter; creates `topics`."""
    if heap_mb < 256:
        raise ValueError(f"Kafka heap_mb must be at least 256, got {heap_mb}")
    names = [topic.name for topic in topics]
    missing = [t for t in (contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC) if t not in names]
    if missing or len(set(names)) != len(names):
        raise ValueError(f"topics must name each of {missing or names} once, got {names}")
    kafka = catalog.KAFKA
    controllers = set(kafka.env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    listeners = (entry.partition("://") for entry in kafka.env["KAFKA_LISTENERS"].split(","))
    advertised = [f"{name}://{HOST_INTERNAL_IP}:{address.rpartition(':')[2]}"
                  for name, _, address in listeners if name not in controllers]
    env = {
        "KAFKA_ADVERTISED_LISTENERS": ",".join(advertised),
        "KAFKA_HEAP_OPTS": f"-Xms{heap_mb}m -Xmx{heap_mb}m",
    }
    if node is not None:
        too_many = [t.name for t in topics if t.replication_factor > len(node.voters)]
        if too_many:
            raise ValueError(f"topics {too_many}: replication factor above the {len(node.voters)} brokers")
        env.update(node.env)
    return _render(catalog.BROKER, data_disk, extra_env={kafka.name: env}, topics=topics)


def tsdb_cloud_init(org: str, bucket: str, retention: str, memory_limit_mb: int,
                    secrets: Sequence[SecretRef], scoped_tokens: Sequence[SecretRef] = (),
                    backup: InfluxBackup | None = None, data_disk: DataDisk = DEFAULT_DATA_DISK) -> str:
    """InfluxDB 2.x set up once with `org`, `bucket` and `retention` (e.g. "30d"), and node-exporter;
    creates the scoped tokens into the secrets `scoped_tokens` names (one per catalog.SCOPED_TOKENS)
    and, with `backup`, backs everything up daily to its bucket."""
    for what, value in (("org", org), ("bucket", bucket)):
        if not value or not value.isprintable() or value != value.strip():
            raise ValueError(f"InfluxDB {what} {value!r}: must be non-empty printable text without "
                             f"surrounding spaces")
    if not _INFLUX_DURATION.fullmatch(retention):
        raise ValueError(f"InfluxDB retention {retention!r}: use a duration like 30d or 720h, 0 for forever")
    if memory_limit_mb < 64:
        raise ValueError(f"InfluxDB memory_limit_mb must be at least 64, got {memory_limit_mb}")
    env = {
        "DOCKER_INFLUXDB_INIT_ORG": org,
        "DOCKER_INFLUXDB_INIT_BUCKET": bucket,
        "DOCKER_INFLUXDB_INIT_RETENTION": retention,
        "GOMEMLIMIT": f"{memory_limit_mb}MiB",
    }
    wanted = sorted(token.secret for token in catalog.SCOPED_TOKENS)
    if sorted(ref.secret for ref in scoped_tokens) != wanted:
        raise ValueError(f"scoped_tokens takes one SecretRef each for {wanted}, got "
                         f"{[ref.secret for ref in scoped_tokens]}")
    return _render(catalog.TSDB, data_disk, secrets=secrets, extra_env={catalog.INFLUXDB.name: env},
                   scoped_tokens=scoped_tokens, influxdb_org=org, influxdb_bucket=bucket, backup=backup)


def monitoring_cloud_init(bundle_volumes: Sequence[str], secrets: Sequence[SecretRef],
                          config_files: Sequence[ConfigFile] = (),
                          data_disk: DataDisk = DEFAULT_DATA_DISK) -> str:
    """Prometheus and Grafana, their config volumes filled from the bundle named in metadata
    (`bundle_volumes`: the volumes it fills) and from `config_files`."""
    return _render(catalog.MONITORING, data_disk, secrets=secrets, bundle_volumes=tuple(bundle_volumes),
                   config_files=config_files)
