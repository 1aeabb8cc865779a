"""The local stack's secrets: generated on the Docker engine and kept beside the data set up with them.

InfluxDB takes its admin password and token, and Grafana its admin password, only while their data
volumes are empty; from then on the data holds the values it was set up with. So the values live in
volumes that `pulumi destroy` keeps along with the data: one per service that reads secrets, mounted
read-only at the catalog's SECRETS_DIR, where the file SECRETS_DIR/<secret> is that service's own
copy, readable only by the user the service reads it as. A one-shot container fills them before any
service starts (infra/render/templates/local/generate-secrets.sh): it generates a secret only when no
service holds it yet, so values and data stay consistent however often the stack is destroyed and
deployed. The values never pass through Pulumi: they are in no input, no state and no output.

The scoped InfluxDB tokens (`catalog.SCOPED_TOKENS`) cannot be generated: InfluxDB creates them. Once
InfluxDB is healthy, `LocalScopedTokens` (a one-shot container of the InfluxDB image with the operator
token read-only) creates or finds each one and writes it into the secrets volume of its one reader:
the write token for the Spark jobs, the read token for Grafana. No other container holds the
operator token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra import catalog
from infra.local.services import RETAINED_LABEL, SCRIPT_DIR, Upload, one_shot_container
from infra.render.templating import TEMPLATES

SCRIPT = TEMPLATES / "local" / "generate-secrets.sh"
SCRIPT_PATH = f"{SCRIPT_DIR}/{SCRIPT.name}"
TOKENS_SCRIPT = TEMPLATES / "local" / "create-scoped-tokens.sh"
# What create-scoped-tokens.sh runs for each token: the same script as on the InfluxDB VM.
TOKEN_SCRIPT = TEMPLATES / "influxdb-token.sh"
# Letters and digits only (the values travel in HTTP headers and files read verbatim): 238 bits.
SECRET_LENGTH = 40


def secret_path(secret: str) -> str:
    """Where a service finds its copy of `secret`: the root of its secrets volume."""
    return f"{catalog.SECRETS_DIR}/{secret}"


@dataclass(frozen=True)
class SecretReader:
    """A container that reads secrets: its service, the uid it reads them as, and which ones."""

    service: str
    uid: str
    secrets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.uid.isdigit():
            raise ValueError(f"{self.service}: the uid that reads secrets must be numeric, got {self.uid!r}")
        unknown = sorted(set(self.secrets) - set(catalog.SECRETS))
        if unknown or not self.secrets:
            raise ValueError(f"{self.service}: read one or more of {catalog.SECRETS}, got {self.secrets}")

    @classmethod
    def of(cls, service: catalog.Service, uid: str) -> SecretReader:
        """The secrets of a catalog service, whose files must be where its secrets volume puts them."""
        for secret_file in service.secret_files:
            if secret_file.container_path != secret_path(secret_file.secret):
                raise ValueError(f"{service.name}: {secret_file.container_path} is not where the local "
                                 f"stack puts {secret_file.secret} ({secret_path(secret_file.secret)})")
        return cls(service.name, uid, tuple(s.secret for s in service.secret_files))


@dataclass(frozen=True)
class LocalSecretsArgs:
    readers: tuple[SecretReader, ...]
    image: pulumi.Input[str]                      # any pulled image with bash and the basic tools
    prefix: str
    memory_mb: int
    labels: Mapping[str, str] = field(default_factory=dict)


class LocalSecrets(pulumi.ComponentResource):
    """One retained secrets volume per reading service, filled by a one-shot container.

    A volume per reader rather than one shared: a container mounts a volume whole (mounting a
    sub-path needs Docker Engine 26), and so each reader sees only its own secrets.
    `volume_names` maps a service to its volume; depend on `succeeded` (resolves once the container
    exited 0), not on the container itself.
    """

    def __init__(self, name: str, args: LocalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:Secrets", name, None, opts)
        services = [reader.service for reader in args.readers]
        if len(set(services)) != len(services):
            raise ValueError(f"one reader per service, got {services}")
        labels = {**args.labels, RETAINED_LABEL: "true"}
        self.volume_names: dict[str, pulumi.Output[str]] = {}
        self.retained_volumes: list[str] = []
        mounts = []
        for reader in args.readers:
            volume_name = f"{args.prefix}-secrets-{reader.service}"
            volume = docker.Volume(
                f"{name}-{reader.service}", name=volume_name,
                labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in sorted(labels.items())],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
            self.volume_names[reader.service] = volume.name
            self.retained_volumes.append(volume_name)
            # The script's DIR/SERVICE/SECRET: the layout of the VMs' host folder, too.
            mounts.append(docker.ContainerVolumeArgs(
                volume_name=volume.name, container_path=f"{catalog.SECRETS_DIR}/{reader.service}"))

        self.name = f"{args.prefix}-secrets"
        self.container, self.succeeded = one_shot_container(
            name, name=self.name, image=args.image, script_path=SCRIPT_PATH, script=SCRIPT.read_text(),
            # Root: it hands each copy to its reader.
            user="0",
            command=[catalog.SECRETS_DIR, str(SECRET_LENGTH),
                     *(f"{r.service}:{r.uid}:{secret}" for r in args.readers for secret in r.secrets
                       if secret in catalog.GENERATED_SECRETS)],
            volumes=mounts, memory_mb=args.memory_mb, labels=args.labels,
            failure="the secrets were not written", parent=self)
        self.register_outputs({"volume_names": self.volume_names})


@dataclass(frozen=True)
class LocalScopedTokensArgs:
    readers: tuple[SecretReader, ...]             # those reading a scoped token get it in their volume
    volume_names: Mapping[str, pulumi.Input[str]]  # service -> secrets volume (`LocalSecrets.volume_names`)
    influxdb_image: pulumi.Input[str]
    influxdb_url: str                             # in the stack's network
    org: str
    bucket: str
    admin_user: str                               # the InfluxDB spec's
    network_name: pulumi.Input[str]
    prefix: str
    memory_mb: int
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Input[pulumi.Resource], ...] = ()  # InfluxDB healthy, the secrets written


class LocalScopedTokens(pulumi.ComponentResource):
    """A one-shot container that creates the scoped InfluxDB tokens into their readers' volumes.

    Depend on `succeeded` (resolves once the container exited 0).
    """

    def __init__(self, name: str, args: LocalScopedTokensArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:ScopedTokens", name, None, opts)
        influxdb = catalog.INFLUXDB
        operator = next(f for f in influxdb.secret_files if f.secret == catalog.INFLUXDB_TOKEN)
        operator_dir = f"{catalog.SECRETS_DIR}/{influxdb.name}"
        specs, writers = [], []
        for token in catalog.SCOPED_TOKENS:
            readers = [r for r in args.readers if token.secret in r.secrets]
            if len(readers) != 1:
                raise ValueError(f"{token.secret} must have one reader, got {[r.service for r in readers]}")
            (reader,) = readers
            specs.append(f"{reader.service}:{reader.uid}:{token.secret}:{token.access}:{token.description}")
            writers.append(docker.ContainerVolumeArgs(
                volume_name=args.volume_names[reader.service],
                container_path=f"{catalog.SECRETS_DIR}/{reader.service}"))
        self.name = f"{args.prefix}-influxdb-tokens"
        self.container, self.succeeded = one_shot_container(
            name, name=self.name, image=args.influxdb_image, script_path=f"{SCRIPT_DIR}/{TOKENS_SCRIPT.name}",
            script=TOKENS_SCRIPT.read_text(),
            # Root: it hands each token to its reader.
            user="0",
            command=[catalog.SECRETS_DIR, f"{operator_dir}/{operator.secret}", args.admin_user, args.org,
                     args.bucket, *specs],
            envs=[f"INFLUX_HOST={args.influxdb_url}"], network_name=args.network_name,
            volumes=[docker.ContainerVolumeArgs(volume_name=args.volume_names[influxdb.name],
                                                container_path=operator_dir, read_only=True), *writers],
            uploads=[Upload(f"{SCRIPT_DIR}/{TOKEN_SCRIPT.name}", content=TOKEN_SCRIPT.read_text(),
                            permissions="0755")],
            memory_mb=args.memory_mb, labels=args.labels,
            failure="the scoped InfluxDB tokens were not created",
            parent=self, depends_on=args.depends_on)
        self.register_outputs({})
