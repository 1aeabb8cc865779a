"""Catalog services as Docker containers: image, volumes, secrets as files, health check, loopback ports.

Everything a container runs comes from `infra.catalog` (the GCP VMs run the same entries through
cloud-init); this module only adds what one Docker engine needs: a shared network instead of the
host's, named volumes instead of disk folders, files uploaded before the container starts (never
secrets: those come from a secrets volume, see `infra.local.secrets`), and one-shot containers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra import catalog

RESTART_POLICY = "unless-stopped"
# As on the VMs: time to stop cleanly (Kafka's controlled shutdown, Spark's shutdown hooks) before a kill.
STOP_TIMEOUT_S = 60
CONFIG_FILE_MODE = "0644"
# Seconds a gating container may take beyond its health check's own budget (first start, slow disk).
WAIT_MARGIN_S = 60
# Marks the volumes `pulumi destroy` keeps, so they can be found (and removed) once the stack is gone.
RETAINED_LABEL = "hydrostream.retained"


@dataclass(frozen=True)
class Upload:
    """A file written into the container before it starts: code or config, which the state holds."""

    path: str
    content: pulumi.Input[str] | None = None
    content_base64: pulumi.Input[str] | None = None
    permissions: str = CONFIG_FILE_MODE
    # A file on the deploying machine, read by the provider (large binaries stay out of the state);
    # its sha256 makes a change of bytes a change of the container.
    source: str | None = None
    source_sha256: str | None = None

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.content, self.content_base64, self.source)) != 1:
            raise ValueError(f"upload {self.path}: give exactly one of content, content_base64, source")
        if (self.source is None) != (self.source_sha256 is None):
            raise ValueError(f"upload {self.path}: a source file needs its source_sha256")
        if not self.path.startswith("/"):
            raise ValueError(f"upload {self.path}: the path must be absolute")

    def args(self) -> docker.ContainerUploadArgs:
        return docker.ContainerUploadArgs(file=self.path, content=self.content,
                                          content_base64=self.content_base64, source=self.source,
                                          source_hash=self.source_sha256, permissions=self.permissions)


def uploads_digest(uploads: Sequence[Upload]) -> str:
    """A digest of literal text uploads: names the config volume they fill."""
    digest = hashlib.sha256()
    for upload in uploads:
        if not isinstance(upload.content, str):
            raise ValueError(f"upload {upload.path}: only literal text files name a config volume")
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
    # The service's secrets volume (`LocalSecrets.volume_names`), mounted read-only at SECRETS_DIR.
    secrets_volume: pulumi.Input[str] | None = None
    uploads: tuple[Upload, ...] = ()
    config_volumes: Mapping[str, str] = field(default_factory=dict)  # volume -> digest of its files
    init: bool = False                            # Docker's init as PID 1: reaps what a script leaves
    wait: bool = False                            # `pulumi up` waits for health: others start after it
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Input[pulumi.Resource], ...] = ()
    # The service's image (`pulled_image`) when the stack needs it before the service (a one-shot container
    # of the same image); None: pulled here.
    image: docker.RemoteImage | None = None


def pulled_image(name: str, service: catalog.Service,
                 opts: pulumi.ResourceOptions | None = None) -> docker.RemoteImage:
    """The service's pinned image, pulled; kept on destroy, so the next `up` needs no registry."""
    return docker.RemoteImage(name, name=service.reference, keep_locally=True, opts=opts)


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
        if service.secret_files and args.secrets_volume is None:
            raise ValueError(f"service {service.name!r} reads secret files: give it its secrets volume")

        image = args.image if args.image is not None else pulled_image(name, service, child)

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
        volumes = [docker.ContainerVolumeArgs(volume_name=self.volume_names[v.name],
                                              container_path=v.container_path, read_only=False)
                   for v in service.volumes]
        if args.secrets_volume is not None:
            volumes.append(docker.ContainerVolumeArgs(volume_name=args.secrets_volume,
                                                      container_path=catalog.SECRETS_DIR, read_only=True))
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
            stop_signal=service.stop_signal,
            # Without it the provider removes a running container with a kill.
            destroy_grace_seconds=STOP_TIMEOUT_S,
            pid_mode="host" if service.host_pid else None,
            init=args.init or None,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            ports=[docker.ContainerPortArgs(internal=p.container_port, external=p.container_port,
                                            ip=args.bind_address, protocol="tcp")
                   for p in args.published] or None,
            volumes=volumes or None,
            # Docker's default propagation (rprivate): `rslave`, as on the VMs, fails on engines whose /
            # is not a shared mount (Docker Desktop); it only matters for filesystems mounted later.
            mounts=[docker.ContainerMountArgs(type="bind", source=m.source, target=m.target, read_only=True)
                    for m in service.host_mounts] or None,
            uploads=[u.args() for u in args.uploads] or None,
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
class KafkaTopicsArgs:
    kafka_image: pulumi.Input[str]
    network_name: pulumi.Input[str]
    setup_args: tuple[str, ...]                   # kafka-setup.sh's (infra.services.kafka.kafka_setup_args)
    scripts: Mapping[str, str]                    # file name -> text: kafka-setup.sh first, then what it runs
    secrets_volume: pulumi.Input[str]             # Kafka's secrets volume: every user's password
    prefix: str
    memory_mb: int
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Input[pulumi.Resource], ...] = ()


SCRIPT_DIR = "/opt/hydrostream/bin"


def check_one_shot_exit(exit_code: int | None, name: str, failure: str) -> None:
    """Stop `pulumi up` with what went wrong and how to retry when a one-shot container failed."""
    if exit_code not in (None, 0):
        raise pulumi.RunError(
            f"{name} exited with {exit_code}: {failure} (`docker logs {name}` says why); once fixed: "
            f"`docker rm {name}` and `pulumi up --refresh`")


def one_shot_succeeded(container: docker.Container, name: str,
                       failure: str) -> pulumi.Output[docker.Container]:
    """`container` (attached, `must_run=False`) once it exited 0; a non-zero exit fails `pulumi up`."""

    def check(exit_code: int | None) -> docker.Container:
        check_one_shot_exit(exit_code, name, failure)
        return container

    return container.exit_code.apply(check)


def one_shot_container(resource: str, *, name: str, image: pulumi.Input[str], script_path: str, script: str,
                       command: Sequence[pulumi.Input[str]], memory_mb: int, labels: Mapping[str, str],
                       failure: str, parent: pulumi.Resource, network_name: pulumi.Input[str] | None = None,
                       user: str | None = None, envs: Sequence[str] = (),
                       volumes: Sequence[docker.ContainerVolumeArgs] = (), uploads: Sequence[Upload] = (),
                       depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
                       ) -> tuple[docker.Container, pulumi.Output[docker.Container]]:
    """A container that runs `script` (bash) once, and the Output to depend on: it resolves once the
    container exited 0 and fails `pulumi up` otherwise. No network unless `network_name` is given."""
    container = docker.Container(
        resource,
        name=name,
        image=image,
        user=user,
        entrypoints=["/bin/bash", script_path],
        command=list(command),
        envs=list(envs) or None,
        network_mode="none" if network_name is None else None,
        networks_advanced=None if network_name is None else [
            docker.ContainerNetworksAdvancedArgs(name=network_name)],
        volumes=list(volumes) or None,
        uploads=[Upload(script_path, content=script, permissions="0755").args(),
                 *(upload.args() for upload in uploads)],
        # `pulumi up` waits until it exits.
        attach=True,
        must_run=False,
        memory=memory_mb,
        restart="no",
        labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(labels.items())],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None,
                                    delete_before_replace=True),
    )
    return container, one_shot_succeeded(container, name, failure)


class KafkaTopics(pulumi.ComponentResource):
    """A one-shot container of the Kafka image that creates the topics, converges their retention and sets
    the users' passwords and ACLs (kafka-setup.sh, logged in as the admin with its password from Kafka's
    secrets volume, mounted read-only).

    Its exit code fails the deployment when it did not succeed, so nothing that needs the topics starts
    without them.
    """

    def __init__(self, name: str, args: KafkaTopicsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:KafkaTopics", name, None, opts)
        (entry, entry_text), *others = args.scripts.items()
        self.name = f"{args.prefix}-kafka-topics"
        self.container, self.succeeded = one_shot_container(
            name, name=self.name, image=args.kafka_image, script_path=f"{SCRIPT_DIR}/{entry}",
            script=entry_text, command=list(args.setup_args),
            uploads=[Upload(f"{SCRIPT_DIR}/{file}", content=text, permissions="0755")
                     for file, text in others],
            volumes=[docker.ContainerVolumeArgs(volume_name=args.secrets_volume,
                                                container_path=catalog.SECRETS_DIR, read_only=True)],
            network_name=args.network_name, memory_mb=args.memory_mb, labels=args.labels,
            failure="the Kafka topics or users were not set up", parent=self, depends_on=args.depends_on)
        # Depend on `succeeded`, not on `container`.
        self.register_outputs({})
