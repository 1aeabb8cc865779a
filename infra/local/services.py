"""Catalog services as Docker containers: image, volumes, secrets as files, health check, loopback ports.

Everything a container runs comes from `infra.catalog` (the GCP VMs run the same entries through
cloud-init); this module only adds what one Docker engine needs: a shared network instead of the
host's, named volumes instead of disk folders, and files uploaded before the container starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from infra import catalog

RESTART_POLICY = "unless-stopped"
# As on the VMs: time to stop cleanly (Kafka's controlled shutdown, Spark's shutdown hooks) before a kill.
STOP_TIMEOUT_S = 60
SECRET_FILE_MODE = "0400"
CONFIG_FILE_MODE = "0644"
# Seconds a gating container may take beyond its health check's own budget (first start, slow disk).
WAIT_MARGIN_S = 60
# Marks the volumes `pulumi destroy` keeps, so they can be found (and removed) once the stack is gone.
RETAINED_LABEL = "hydrostream.retained"


@dataclass(frozen=True)
class Upload:
    """A file written into the container before it starts; secret content stays a Pulumi secret."""

    path: str
    content: pulumi.Input[str] | None = None
    content_base64: pulumi.Input[str] | None = None
    secret: bool = False
    owner: str | None = None
    permissions: str = CONFIG_FILE_MODE

    def __post_init__(self) -> None:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError(f"upload {self.path}: give exactly one of content, content_base64")
        if not self.path.startswith("/"):
            raise ValueError(f"upload {self.path}: the path must be absolute")

    def args(self) -> docker.ContainerUploadArgs:
        def protect(value: pulumi.Input[str] | None) -> pulumi.Input[str] | None:
            # pulumi-docker does not mark upload content secret itself: the value would reach the
            # state in clear text unless it is wrapped here.
            return pulumi.Output.secret(value) if self.secret and value is not None else value

        return docker.ContainerUploadArgs(
            file=self.path, content=protect(self.content), content_base64=protect(self.content_base64),
            owner=self.owner, permissions=self.permissions)


def uploads_digest(uploads: Sequence[Upload]) -> str:
    """A digest of plain (non-secret, literal) uploads: names the config volume they fill."""
    digest = hashlib.sha256()
    for upload in uploads:
        if upload.secret or not isinstance(upload.content, str):
            raise ValueError(f"upload {upload.path}: only literal, non-secret files name a config volume")
        for part in (upload.path, upload.content):
            digest.update(len(part.encode()).to_bytes(8, "big"))
            digest.update(part.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class PublishedPort:
    """A container port published under the same number on the host's loopback address."""

    container_port: int


@dataclass(frozen=True)
class ServiceContainerArgs:
    service: catalog.Service
    prefix: str                                   # container and volume names start with it
    network_name: pulumi.Input[str]
    bind_address: str                             # loopback only (settings validates it)
    memory_mb: int                                # a limit for every container: one cannot starve the rest
    published: tuple[PublishedPort, ...] = ()
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)   # beyond the catalog's
    command: tuple[pulumi.Input[str], ...] | None = None                 # None: the catalog's
    user: str | None = None                       # None: the catalog's
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # logical name -> value
    secret_owner: str = "0"                       # uid that reads the secret files in the container
    uploads: tuple[Upload, ...] = ()
    config_volumes: Mapping[str, str] = field(default_factory=dict)  # volume -> digest of its files
    init: bool = False                            # Docker's init as PID 1: reaps what a script leaves
    wait: bool = False                            # `pulumi up` waits for health: others start after it
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Input[pulumi.Resource], ...] = ()


def container_name(prefix: str, service: catalog.Service) -> str:
    """The container's name, which is also its host name on the stack's network."""
    return f"{prefix}-{service.name}"


def healthcheck_args(check: catalog.HealthCheck) -> docker.ContainerHealthcheckArgs:
    """The catalog health check in pulumi-docker's terms (durations as Go duration strings)."""
    return docker.ContainerHealthcheckArgs(
        tests=list(check.command), interval=f"{check.interval_s}s", timeout=f"{check.timeout_s}s",
        retries=check.retries, start_period=f"{check.start_period_s}s")


def wait_timeout_s(check: catalog.HealthCheck) -> int:
    """How long `pulumi up` waits for health: the check's start period and retries, plus a margin."""
    return check.start_period_s + check.retries * (check.interval_s + check.timeout_s) + WAIT_MARGIN_S


class ServiceContainer(pulumi.ComponentResource):
    """One catalog service: its pulled image, named volumes, and the container on the stack's network.

    Data volumes are retained when the stack is destroyed; config volumes are named after a digest
    of their files, so changed config gets a fresh volume (and a replaced container).
    """

    def __init__(self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:ServiceContainer", name, None, opts)
        service = args.service
        child = pulumi.ResourceOptions(parent=self)
        unknown = set(args.config_volumes) - {v.name for v in service.volumes}
        if unknown:
            raise ValueError(f"service {service.name!r} has no volume {sorted(unknown)}")
        clashes = set(args.env) & (set(service.env) | {s.env for s in service.secret_files if s.env})
        if clashes:
            raise ValueError(f"service {service.name!r}: {sorted(clashes)} already set by the catalog")
        missing = {s.secret for s in service.secret_files} - set(args.secrets)
        if missing:
            raise ValueError(f"service {service.name!r} needs the secrets {sorted(missing)}")

        image = docker.RemoteImage(
            name, name=service.image,
            # Pulled images stay on destroy: the next `up` needs no registry.
            keep_locally=True, opts=child)

        self.volume_names: dict[str, pulumi.Output[str]] = {}
        self.data_volumes: list[str] = []
        for volume in service.volumes:
            digest = args.config_volumes.get(volume.name)
            volume_name = f"{args.prefix}-{volume.name}" + (f"-{digest[:12]}" if digest else "")
            labels = {**args.labels, **({} if digest else {RETAINED_LABEL: "true"})}
            resource = docker.Volume(
                f"{name}-{volume.name}", name=volume_name,
                labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in sorted(labels.items())],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=digest is None))
            self.volume_names[volume.name] = resource.name
            if digest is None:
                self.data_volumes.append(volume_name)

        env = {**service.env, **{s.env: s.container_path for s in service.secret_files if s.env}, **args.env}
        secret_uploads = tuple(
            Upload(s.container_path, content=args.secrets[s.secret], secret=True, owner=args.secret_owner,
                   permissions=SECRET_FILE_MODE)
            for s in service.secret_files)
        user = args.user if args.user is not None else service.user
        self.service_name = service.name
        self.name = container_name(args.prefix, service)
        container = docker.Container(
            name,
            name=self.name,
            image=image.image_id,
            command=list(args.command if args.command is not None else service.command) or None,
            envs=[f"{key}={value}" if isinstance(value, str) else pulumi.Output.concat(key, "=", value)
                  for key, value in sorted(env.items())] or None,
            user=user,
            restart=RESTART_POLICY,
            memory=args.memory_mb,
            stop_timeout=STOP_TIMEOUT_S,
            # Without it the provider removes a running container with a kill.
            destroy_grace_seconds=STOP_TIMEOUT_S,
            pid_mode="host" if service.host_pid else None,
            init=args.init or None,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            ports=[docker.ContainerPortArgs(internal=p.container_port, external=p.container_port,
                                            ip=args.bind_address, protocol="tcp")
                   for p in args.published] or None,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume_names[v.name],
                                                container_path=v.container_path, read_only=False)
                     for v in service.volumes] or None,
            # Docker's default propagation (rprivate): `rslave`, as on the VMs, fails on engines whose /
            # is not a shared mount (Docker Desktop); it only matters for filesystems mounted later.
            mounts=[docker.ContainerMountArgs(type="bind", source=m.source, target=m.target, read_only=True)
                    for m in service.host_mounts] or None,
            uploads=[u.args() for u in (*secret_uploads, *args.uploads)] or None,
            healthcheck=healthcheck_args(service.health_check),
            wait=args.wait,
            wait_timeout=wait_timeout_s(service.health_check) if args.wait else None,
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.depends_on),
                # The name is fixed (others address the container by it), so it cannot exist twice.
                delete_before_replace=True),
        )
        self.container = container
        self.image_id: pulumi.Output[str] = image.image_id
        self.register_outputs({"name": self.name, "image_id": self.image_id,
                               "volume_names": self.volume_names})


@dataclass(frozen=True)
class GeneratedSecretsArgs:
    names: tuple[str, ...] = catalog.SECRETS
    length: int = 40


class GeneratedSecrets(pulumi.ComponentResource):
    """The catalog's secrets, generated once per stack; `values` are Pulumi secrets."""

    def __init__(self, name: str, args: GeneratedSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:GeneratedSecrets", name, None, opts)
        self.values: dict[str, pulumi.Output[str]] = {}
        for secret in args.names:
            # Letters and digits only: the values travel in HTTP headers and files read verbatim.
            password = random.RandomPassword(secret, length=args.length, special=False,
                                             opts=pulumi.ResourceOptions(parent=self))
            self.values[secret] = pulumi.Output.secret(password.result)
        self.register_outputs({})


@dataclass(frozen=True)
class Topic:
    """A Kafka topic the stack creates (the broker does not auto-create topics)."""

    name: str
    partitions: int
    retention_ms: int


@dataclass(frozen=True)
class KafkaTopicsArgs:
    kafka_image: pulumi.Input[str]
    network_name: pulumi.Input[str]
    bootstrap_servers: str
    topics: tuple[Topic, ...]
    script: str                                   # infra/templates/local/kafka-topics.sh
    prefix: str
    memory_mb: int
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()


SCRIPT_DIR = "/opt/hydrostream/bin"


class KafkaTopics(pulumi.ComponentResource):
    """A one-shot container of the Kafka image that creates the topics and converges their retention.

    `pulumi up` waits until it exits (attach); `exit_code` fails the deployment when it did not
    succeed, so nothing that needs the topics starts without them.
    """

    def __init__(self, name: str, args: KafkaTopicsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:KafkaTopics", name, None, opts)
        script_path = f"{SCRIPT_DIR}/kafka-topics.sh"
        self.name = f"{args.prefix}-kafka-topics"
        container = docker.Container(
            name,
            name=self.name,
            image=args.kafka_image,
            entrypoints=["/bin/bash", script_path],
            command=[args.bootstrap_servers,
                     *(f"{t.name}:{t.partitions}:{t.retention_ms}" for t in args.topics)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            uploads=[Upload(script_path, content=args.script, permissions="0755").args()],
            attach=True,
            must_run=False,
            memory=args.memory_mb,
            restart="no",
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on),
                                        delete_before_replace=True),
        )
        self.container = container
        # Resolves to the container once it exited 0: depend on this, not on `container`.
        self.succeeded: pulumi.Output[docker.Container] = container.exit_code.apply(
            lambda code: self._check(code, container))
        self.register_outputs({})

    def _check(self, exit_code: int | None, container: docker.Container) -> docker.Container:
        if exit_code not in (None, 0):
            raise pulumi.RunError(
                f"{self.name} exited with {exit_code}: the Kafka topics were not created (`docker logs "
                f"{self.name}` says why); once fixed: `docker rm {self.name}` and `pulumi up --refresh`")
        return container
