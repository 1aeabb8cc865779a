"""Cloud-init for the service VMs: the catalog's containers as systemd units on Container-Optimized OS.

Pure functions, no Pulumi resources: callers resolve Outputs with `.apply` and pass plain values
(infra/render/vm_inputs.py). A service's environment, heap and topics are its spec's
(infra/services/), rendered here as they are, unit by unit (infra/render/systemd.py). Each role
builder returns the whole `#cloud-config` document, the value of the VM's `user-data` metadata key:

    broker_cloud_init(spec: KafkaSpec, node, secrets, data_disk=DEFAULT_DATA_DISK, *, agent: AgentJar) -> str
    tsdb_cloud_init(spec: InfluxDbSpec, secrets, scoped_tokens=(), backup=None,
                    data_disk=DEFAULT_DATA_DISK) -> str
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
- broker: Kafka advertises `<internal IP>:<port>` for its client listeners (the spec's); the IP is read
  from the metadata server before each start (host-env.sh), never written here. The KRaft storage is
  formatted only when it is not formatted yet (the catalog fixes CLUSTER_ID), so the log directory on
  the data disk survives reboots and VM replacement. A `KafkaNode` places the broker in a cluster: its
  node id, `broker.rack`, the controller quorum and the replication of the internal topics
  (`KafkaNode.env`); its quorum is dynamic (KIP-853, a single broker a quorum of itself), so its container
  runs kafka-start.sh, which formats with kafka-format.sh (--initial-controllers at the cluster's first
  formation, else joining with a new directory id, and the admin's SCRAM credential) instead of the
  image's entrypoint. Every listener authenticates (SASL, `sasl_env`): the broker fetches every Kafka
  user's password, kafka-start.sh writes the admin's login files to the container's tmpfs and starts the
  broker with them. Kafka loads the metrics agent (`catalog.KAFKA_METRICS_AGENT`,
  through KAFKA_OPTS): before each start of the container, fetch-agent.sh puts the jar Pulumi uploaded
  (`AgentJar`) beside the agent's config (written here) in AGENT_HOST_DIR/<service>, checked against the
  lock's sha256 (a copy kept on the boot disk's /var spares the download after the first boot; a jar
  whose sha256 differs is refused and the broker does not start), and that folder is mounted read-only
  where the agent option points. `hydrostream-kafka-topics` runs kafka-setup.sh in the broker's container,
  logged in as the admin: it creates the topics with `--if-not-exists` and their replication factor,
  converges retention.ms and min.insync.replicas, fails when an existing topic has fewer replicas than
  asked, and sets each job's user's SCRAM credential and ACLs (`access`).
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
  boot's config in place; with none, the containers restart until the download succeeds. A bundle
  whose sha256 is not the one its object name gives is refused, nothing of it applied, and reported
  to node-exporter's textfile collector (HydroConfigBundleRefused).
A container whose data disk is not mounted never starts: below the mount point is a tmpfs.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Mapping, Sequence

from infra import catalog
from infra.render.systemd import BASH, BIN_DIR, UNIT_DIR, Units, systemd_command
from infra.render.templating import render_template, template_text
from infra.render.vm_inputs import (
    DEFAULT_DATA_DISK,
    AgentJar,
    ConfigFile,
    DataDisk,
    InfluxBackup,
    SecretRef,
)
from infra.services.influxdb import InfluxDbSpec
from infra.services.kafka import (
    SETUP_SCRIPTS,
    START_SCRIPTS,
    KafkaNode,
    KafkaSpec,
    kafka_setup_args,
    kafka_start_command,
    metrics_agent_config,
)

# GCE refuses a metadata value larger than this.
METADATA_VALUE_LIMIT_BYTES = 256 * 1024

INLINE_CONFIG_DIR = "/etc/hydrostream/config"
HOST_ENV_FILE = "/run/hydrostream/host.env"
# Written by host-env.sh into HOST_ENV_FILE; systemd expands it in the units that read that file.
HOST_INTERNAL_IP = "${HOST_INTERNAL_IP}"

DOCKER = "/usr/bin/docker"
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

# Where a container whose command is a template script finds BIN_DIR; what such a script runs beside it.
SCRIPTS_IN_CONTAINER = "/opt/hydrostream"
CONTAINER_SCRIPT_NEEDS = {START_SCRIPTS[0]: START_SCRIPTS[1:]}
# A service's Java agent: its jar and config in AGENT_HOST_DIR/<service> (/etc: a tmpfs, refilled each
# boot), mounted read-only at the agent's folder; checked jars kept by sha256 in AGENT_CACHE_DIR.
AGENT_HOST_DIR = "/etc/hydrostream/agents"
AGENT_CACHE_DIR = "/var/lib/hydrostream/agents"

# Host mounts follow mounts the host makes later (a disk attached after boot), as node-exporter's
# README runs it; COS's / is a shared mount, so `rslave` works here (Docker Desktop refuses it).
HOST_MOUNT_PROPAGATION = "rslave"

_NUMERIC_USER = re.compile(r"[0-9]+(:[0-9]+)?")


def unit_name(service: catalog.Service) -> str:
    """The systemd unit that runs a catalog service."""
    return f"hydrostream-{service.name}.service"


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


def agent_host_dir(service: catalog.Service) -> str:
    """The host folder that holds a service's Java agent jar and config."""
    return f"{AGENT_HOST_DIR}/{service.name}"


def _container_unit(units: Units, data_disk: DataDisk, service: catalog.Service,
                    secrets: Mapping[str, SecretRef], env: Mapping[str, str],
                    config_volumes: frozenset[str], agent: AgentJar | None = None) -> str:
    """The unit that runs one service's container, `env` its whole environment (its spec's)."""
    check = service.health_check
    lines = [[DOCKER, "run", "--rm", "--name", service.name, "--network", "host"]]
    if service.user is not None:
        lines.append(["--user", service.user])
    if service.stop_signal is not None:
        lines.append(["--stop-signal", service.stop_signal])
    host_access = ["--pid", "host"] if service.host_pid else []
    for mount in service.host_mounts:
        host_access += ["--volume", f"{mount.source}:{mount.target}:ro,{HOST_MOUNT_PROPAGATION}"]
    if host_access:
        lines.append(host_access)
    lines += [["--env", f"{key}={value}"] for key, value in env.items()]
    # An optional secret file without a SecretRef (a receiver the stack does not use) is left out.
    secret_files = [s for s in service.secret_files if not s.optional or s.secret in secrets]
    lines += [["--env", f"{s.env}={s.container_path}"] for s in secret_files if s.env]
    lines += [["--volume", f"{data_disk.volume_path(v)}:{v.container_path}:"
               + ("ro" if v.name in config_volumes else "rw")] for v in service.volumes]
    lines += [["--volume", f"{secret_host_path(service, s.secret)}:{s.container_path}:ro"]
              for s in secret_files]
    lines += [
        ["--health-cmd", _health_command(service)],
        ["--health-interval", f"{check.interval_s}s", "--health-timeout", f"{check.timeout_s}s",
         "--health-retries", str(check.retries), "--health-start-period", f"{check.start_period_s}s"],
        [service.reference, *service.command],
    ]

    uses_host_env = any(HOST_INTERNAL_IP in value for value in env.values())
    expand = [HOST_INTERNAL_IP] if uses_host_env else []
    data_volumes = [data_disk.volume_path(v) for v in service.volumes if v.name not in config_volumes]
    pre = []
    if uses_host_env:
        pre.append(units.script("host-env.sh", HOST_ENV_FILE))
    if data_volumes:
        pre.append(units.script("volume-dirs.sh", data_disk.mount_path, _owner(service), *data_volumes))
    for secret_file in secret_files:
        if secret_file.secret not in secrets:
            raise ValueError(f"service {service.name!r} needs secret {secret_file.secret!r}: no SecretRef")
        # A scoped token appears once InfluxDB has created it: wait within the unit's start timeout.
        wait = [str(SCOPED_TOKEN_WAIT_S)] if secret_file.secret in _SCOPED else []
        pre.append(units.script("fetch-secret.sh", secrets[secret_file.secret].secret_id,
                                secret_host_path(service, secret_file.secret), _owner(service), *wait))
    if service.java_agent is not None:
        if agent is None:
            raise ValueError(f"service {service.name!r} loads a Java agent: give its AgentJar")
        pre.append(units.script("fetch-agent.sh", agent.media_url, agent.sha256, AGENT_CACHE_DIR,
                                f"{agent_host_dir(service)}/{service.java_agent.jar}"))
    # A failed requirement stops the container for good (no data disk: never write to the tmpfs
    # below it); a wanted one may fail and retry while the container restarts until it can run.
    requires = ["docker.service", FIREWALL_UNIT] + ([DATA_DISK_UNIT] if service.volumes else [])
    wants = [CONFIG_UNIT] if any(v.name in config_volumes for v in service.volumes) else []
    return render_template(
        "container.service.j2",
        service=service,
        docker=DOCKER,
        requires=requires,
        wants=wants,
        # Optional when read for the ExecStartPre that writes it; ExecStart reads it afterwards.
        environment_files=[f"-{HOST_ENV_FILE}"] if uses_host_env else [],
        stop_timeout_s=STOP_TIMEOUT_S,
        exec_start_pre=[systemd_command(command) for command in pre],
        docker_run_lines=[systemd_command(line, expand) for line in lines],
    )


def _render(role: str, data_disk: DataDisk, *, secrets: Sequence[SecretRef] = (),
            envs: Mapping[str, Mapping[str, str]] | None = None,
            bundle_volumes: Sequence[str] = (), config_files: Sequence[ConfigFile] = (),
            kafka_setup: Sequence[str] = (), scoped_tokens: Sequence[SecretRef] = (),
            influxdb: InfluxDbSpec | None = None, backup: InfluxBackup | None = None,
            commands: Mapping[str, Sequence[str]] | None = None,
            agents: Mapping[str, tuple[AgentJar, str]] | None = None) -> str:
    """The cloud-config of one role: every catalog service of the role, plus what they need; `commands`:
    service name -> a template script (and its arguments) that runs as the container's command, from
    BIN_DIR mounted read-only at SCRIPTS_IN_CONTAINER; `agents`: service name -> its Java agent's jar and
    config text (every service with a `java_agent` needs one); `kafka_setup`: kafka-setup.sh's arguments, run
    in the Kafka container at every boot."""
    commands = commands or {}
    agents = agents or {}
    scripts = catalog.HostMount(BIN_DIR, SCRIPTS_IN_CONTAINER)
    services = tuple(
        dataclasses.replace(service, command=("bash", f"{SCRIPTS_IN_CONTAINER}/{commands[service.name][0]}",
                                              *commands[service.name][1:]),
                            host_mounts=(*service.host_mounts, scripts))
        if service.name in commands else service
        for service in catalog.services_for_role(role))
    services = tuple(
        dataclasses.replace(service, host_mounts=(
            *service.host_mounts, catalog.HostMount(agent_host_dir(service), service.java_agent.folder)))
        if service.java_agent is not None else service
        for service in services)
    with_agent = {service.name for service in services if service.java_agent is not None}
    if set(agents) != with_agent:
        raise ValueError(f"role {role!r}: give the Java agent of exactly {sorted(with_agent)}, got "
                         f"{sorted(agents)}")
    envs = envs or {}
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
    unknown = set(envs) - {s.name for s in services}
    if unknown:
        raise ValueError(f"role {role!r} runs no service {sorted(unknown)}")

    units = Units()
    for script, *_args in commands.values():
        units.scripts.update((script, *CONTAINER_SCRIPT_NEEDS.get(script, ())))
    ports = sorted({(p.number, p.protocol) for service in services for p in service.ports})
    units.oneshot(FIREWALL_UNIT, "accept the role's ports in the host firewall",
                  units.script("open-host-ports.sh", *(f"{number}/{protocol}" for number, protocol in ports)),
                  network=False)
    if role_volumes:
        units.oneshot(DATA_DISK_UNIT, f"mount the data disk at {data_disk.mount_path}",
                      units.script("mount-data-disk.sh", data_disk.device, data_disk.mount_path),
                      network=False)
    inline_files = {f"{INLINE_CONFIG_DIR}/{f.volume}/{f.path}": f.content for f in config_files}
    if len(inline_files) != len(config_files):
        raise ValueError("two config files have the same volume and path")
    agent_configs = {f"{agent_host_dir(s)}/{s.java_agent.config}": agents[s.name][1]
                     for s in services if s.java_agent is not None}
    bundle = f"metadata:{CONFIG_BUNDLE_KEY}" if bundle_volumes else "-"
    fetch_config = [data_disk.mount_path, INLINE_CONFIG_DIR, bundle, *sorted(config_volumes)]
    if bundle_volumes:
        # Where node-exporter reads whether the bundle passed its sha256 check (an alert).
        fetch_config = ["--textfile", data_disk.volume_path(catalog.NODE_EXPORTER_TEXTFILE), *fetch_config]
    if config_volumes:
        units.oneshot(CONFIG_UNIT, "fill the config volumes", units.script("fetch-config.sh", *fetch_config),
                      requires=[DATA_DISK_UNIT])
    if bundle_volumes:
        readers = [unit_name(s) for s in services if any(v.name in config_volumes for v in s.volumes)]
        restart = [word for unit in readers for word in ("--restart", unit)]
        units.oneshot(CONFIG_REFRESH_UNIT, "apply a new config bundle named in metadata",
                      units.script("fetch-config.sh", *restart, *fetch_config),
                      requires=[DATA_DISK_UNIT, CONFIG_UNIT], once_per_boot=False)
        units.timer(CONFIG_REFRESH_UNIT, "look for a new config bundle", CONFIG_REFRESH_S)
    units.oneshot(USER_DATA_WATCH_UNIT, "reboot to apply a changed user-data",
                  units.script("watch-user-data.sh", CLOUD_INIT_USER_DATA, USER_DATA_STATE),
                  once_per_boot=False)
    units.timer(USER_DATA_WATCH_UNIT, "compare the user-data metadata with the applied one",
                USER_DATA_WATCH_S)
    for service in services:
        unit = _container_unit(units, data_disk, service, by_secret, envs.get(service.name, service.env),
                               config_volumes, agents[service.name][0] if service.name in agents else None)
        units.units[unit_name(service)] = unit
        units.enabled.append(unit_name(service))
    if kafka_setup:
        if catalog.KAFKA.name not in commands:
            raise ValueError("the Kafka topics and users are set up from the scripts the broker's container "
                             "runs: give its command")
        # In the broker's running container, from its scripts folder. KAFKA_OPTS cleared: the broker's
        # metrics agent option would make each tool's JVM bind the agent's port, which the broker holds.
        units.oneshot(KAFKA_TOPICS_UNIT, "create the Kafka topics and the users' logins and ACLs",
                      [DOCKER, "exec", "--env", "KAFKA_OPTS=", catalog.KAFKA.name, "bash",
                       f"{SCRIPTS_IN_CONTAINER}/{SETUP_SCRIPTS[0]}", *kafka_setup],
                      wants=[unit_name(catalog.KAFKA)], timeout_s=600)
        units.scripts.update(SETUP_SCRIPTS)
        units.enabled.append(KAFKA_TOPICS_UNIT)
    if scoped_tokens:
        if influxdb is None:
            raise ValueError("scoped tokens need the InfluxDB spec they are created in")
        by_name = {ref.secret: ref.secret_id for ref in scoped_tokens}
        specs = [f"{t.access}:{t.description}:{by_name[t.secret]}" for t in catalog.SCOPED_TOKENS]
        operator = _operator_token_path()
        units.oneshot(INFLUXDB_TOKENS_UNIT, "create the scoped InfluxDB tokens into Secret Manager",
                      units.script("create-influxdb-tokens.sh", influxdb.service.name, operator,
                                   influxdb.admin_user, influxdb.org, influxdb.bucket,
                                   data_disk.volume_path(INFLUXDB_TOKENS_STATE),
                                   *specs),
                      requires=[DATA_DISK_UNIT], wants=[unit_name(influxdb.service)], timeout_s=600)
        units.scripts.add("influxdb-token.sh")  # what create-influxdb-tokens.sh runs inside InfluxDB
        units.enabled.append(INFLUXDB_TOKENS_UNIT)
    if backup is not None:
        database = catalog.INFLUXDB
        host_dir, container_dir = _influxdb_folder(data_disk, INFLUXDB_BACKUP_FOLDER)
        units.oneshot(INFLUXDB_BACKUP_UNIT, "back up InfluxDB to the backup bucket",
                      units.script("influxdb-backup.sh", database.name, _operator_token_path(), host_dir,
                                   container_dir, backup.bucket, backup.account_email,
                                   # Where node-exporter reads the last good backup's time (an alert).
                                   data_disk.volume_path(catalog.NODE_EXPORTER_TEXTFILE)),
                      requires=[DATA_DISK_UNIT, unit_name(database)], timeout_s=INFLUXDB_BACKUP_TIMEOUT_S,
                      once_per_boot=False)
        units.calendar_timer(INFLUXDB_BACKUP_UNIT, "back up InfluxDB daily", INFLUXDB_BACKUP_CALENDAR)
        # What the backup and the restore run inside the container.
        units.scripts.add("influx-archive.sh")
        units.scripts.add(influxdb_restore_command(data_disk)[1].rsplit("/", 1)[1])

    write_files = [_write_file(f"{BIN_DIR}/{name}", "0755", template_text(name))
                   for name in sorted(units.scripts)]
    write_files += [_write_file(f"{UNIT_DIR}/{unit}", "0644", text) for unit, text in units.units.items()]
    write_files += [_write_file(path, "0644", content)
                    for path, content in {**inline_files, **agent_configs}.items()]
    runcmd = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "--no-block", *units.enabled]]
    document = render_template("cloud-config.yaml.j2", role=role, data_disk=data_disk,
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


def broker_cloud_init(spec: KafkaSpec, node: KafkaNode, secrets: Sequence[SecretRef],
                      data_disk: DataDisk = DEFAULT_DATA_DISK, *, agent: AgentJar) -> str:
    """Kafka (a KRaft broker+controller, `node` of its cluster: one or more) with its metrics agent (`agent`:
    the jar) and node-exporter, as `spec` says; every listener authenticates (`secrets`: the Kafka users'
    passwords); creates its topics and the users' credentials and ACLs."""
    # Clients reach each listener at the VM's internal address, read at each start (host-env.sh).
    env = spec.env({listener.name: HOST_INTERNAL_IP for listener in spec.client_listeners}, node)
    return _render(catalog.BROKER, data_disk, secrets=secrets, envs={spec.service.name: env},
                   kafka_setup=kafka_setup_args(spec, f"localhost:{spec.service.port('kafka')}"),
                   commands={spec.service.name: kafka_start_command(node)},
                   agents={spec.service.name: (agent, metrics_agent_config())})


def tsdb_cloud_init(spec: InfluxDbSpec, secrets: Sequence[SecretRef], scoped_tokens: Sequence[SecretRef] = (),
                    backup: InfluxBackup | None = None, data_disk: DataDisk = DEFAULT_DATA_DISK) -> str:
    """InfluxDB 2.x set up once as `spec` says, and node-exporter; creates the scoped tokens into the
    secrets `scoped_tokens` names (one per catalog.SCOPED_TOKENS) and, with `backup`, backs everything up
    daily to its bucket."""
    wanted = sorted(token.secret for token in catalog.SCOPED_TOKENS)
    if sorted(ref.secret for ref in scoped_tokens) != wanted:
        raise ValueError(f"scoped_tokens takes one SecretRef each for {wanted}, got "
                         f"{[ref.secret for ref in scoped_tokens]}")
    return _render(catalog.TSDB, data_disk, secrets=secrets, envs={spec.service.name: spec.env},
                   scoped_tokens=scoped_tokens, influxdb=spec, backup=backup)


def monitoring_cloud_init(bundle_volumes: Sequence[str], secrets: Sequence[SecretRef],
                          config_files: Sequence[ConfigFile] = (),
                          data_disk: DataDisk = DEFAULT_DATA_DISK) -> str:
    """Prometheus, Alertmanager and Grafana, their config volumes filled from the bundle named in metadata
    (`bundle_volumes`: the volumes it fills) and from `config_files`."""
    return _render(catalog.MONITORING, data_disk, secrets=secrets, bundle_volumes=tuple(bundle_volumes),
                   config_files=config_files)
