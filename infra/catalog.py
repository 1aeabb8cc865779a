"""Service catalog: the one place images, ports, environment, volumes and health checks live.

The `local` stack (Docker) and the GCP service VMs (cloud-init on Container-Optimized OS) render
their containers from these entries, so both run the same pinned images the same way. The
Dataproc image table beside it ties the cluster image to its Spark line and the Kafka connector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hydrostream_jobs import contract

from infra.paths import PROJECT_DIR

IMAGES_LOCK = PROJECT_DIR / "infra" / "images.lock"
_IMAGE_LINE = re.compile(r"(\S+:[\w][\w.-]*)\s+(sha256:[0-9a-f]{64})")


def locked_image_digests(lock: Path = IMAGES_LOCK) -> dict[str, str]:
    """`name:tag` -> `sha256:...` as the images lock records them; a malformed line is named."""
    digests: dict[str, str] = {}
    for number, raw in enumerate(lock.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _IMAGE_LINE.fullmatch(line)
        if match is None or match.group(1) in digests:
            raise ValueError(f"{lock}:{number}: expected one `name:tag sha256:<64 hex>` per image, "
                             f"got {line!r}")
        digests[match.group(1)] = match.group(2)
    return digests


IMAGE_DIGESTS = locked_image_digests()


@dataclass(frozen=True)
class Port:
    """A port a container listens on; `name` is what firewall rules and scrape targets refer to."""

    name: str
    number: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Volume:
    """A named data volume mounted into the container (a persistent disk folder on a VM)."""

    name: str
    container_path: str


@dataclass(frozen=True)
class SecretFile:
    """A secret delivered as a file (never an environment value or a command-line argument)."""

    secret: str            # logical secret name, see `SECRETS`
    container_path: str
    env: str | None = None  # the image's `*_FILE` variable that points at it, if it has one
    # Present only when the stack configures what reads it (an alert receiver): a renderer given no
    # value for it leaves the file out, and the service's config must then not name it.
    optional: bool = False


@dataclass(frozen=True)
class HostMount:
    """A host path bind-mounted read-only into the container (how it propagates is the renderer's call)."""

    source: str
    target: str


@dataclass(frozen=True)
class HealthCheck:
    """A container health check, in Docker's terms."""

    command: tuple[str, ...]
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 6
    start_period_s: int = 30


@dataclass(frozen=True)
class JavaAgent:
    """A Java agent the service's JVM loads: its jar and config in one folder of the container (mounted
    read-only on a VM, uploaded on the local stack), serving Prometheus metrics on `port`."""

    folder: str
    jar: str       # file names in `folder`
    config: str
    port: int

    @property
    def java_option(self) -> str:
        """`-javaagent:<jar>=<port>:<config>`, as the JVM takes it (through KAFKA_OPTS for Kafka)."""
        return f"-javaagent:{self.folder}/{self.jar}={self.port}:{self.folder}/{self.config}"


@dataclass(frozen=True)
class Service:
    """One containerized service: its pinned image and how it runs."""

    name: str
    image: str
    role: str                               # the VM role that hosts it on GCP
    ports: tuple[Port, ...]
    health_check: HealthCheck
    env: dict[str, str] = field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    command: tuple[str, ...] = ()
    user: str | None = None
    host_mounts: tuple[HostMount, ...] = ()
    host_pid: bool = False                  # in the host's PID namespace (sees the host's processes)
    stop_signal: str | None = None          # what stops it cleanly, when not docker's SIGTERM
    java_agent: JavaAgent | None = None     # a Java agent its JVM loads (the renderers ship its jar)

    @property
    def reference(self) -> str:
        """What is pulled: `image@sha256:...` where infra/images.lock records the image's digest, else
        the tag alone."""
        digest = IMAGE_DIGESTS.get(self.image)
        return f"{self.image}@{digest}" if digest else self.image

    def port(self, name: str) -> int:
        """The port number called `name`; a KeyError names the service when there is none."""
        for port in self.ports:
            if port.name == name:
                return port.number
        raise KeyError(f"service {self.name!r} has no port {name!r}")


# Roles: one VM (and one service account, which the firewall rules select) per role on GCP.
BROKER = "broker"
TSDB = "tsdb"
MONITORING = "monitoring"
DATAPROC = "dataproc"
ROLES = (BROKER, TSDB, MONITORING)
EVERY_VM = "host"  # the role of a service that runs on every service VM (node-exporter)

# Logical secret names. GENERATED ones: on GCP generated by Pulumi and kept in Secret Manager; on the
# local stack generated on the Docker engine into retained volumes (infra/local/secrets.py).
INFLUXDB_ADMIN_PASSWORD = "influxdb-admin-password"
INFLUXDB_TOKEN = "influxdb-token"              # the operator (all-access) token: only InfluxDB holds it
GRAFANA_ADMIN_PASSWORD = "grafana-admin-password"
# Kafka's users (SASL/SCRAM; who may do what: infra/services/kafka.py `access`), each with a generated
# password: the admin (the brokers between themselves, the operator's tools, the boot units), the jobs'.
KAFKA_ADMIN_USER = "hydro-admin"
KAFKA_PRODUCER_USER = "hydro-producer"
KAFKA_CONSUMER_USER = "hydro-consumer"
KAFKA_USERS = (KAFKA_ADMIN_USER, KAFKA_PRODUCER_USER, KAFKA_CONSUMER_USER)


def kafka_password(user: str) -> str:
    """The logical secret holding a Kafka user's password; the brokers' scripts find it as the file
    SECRETS_DIR/kafka-password-USER (kafka-access.sh, kafka-setup.sh)."""
    if user not in KAFKA_USERS:
        raise ValueError(f"no Kafka user {user!r}: one of {KAFKA_USERS}")
    return f"kafka-password-{user}"


GENERATED_SECRETS = (INFLUXDB_ADMIN_PASSWORD, INFLUXDB_TOKEN, GRAFANA_ADMIN_PASSWORD,
                     *(kafka_password(user) for user in KAFKA_USERS))
# Tokens by need, created by InfluxDB after its setup (InfluxDB 2 takes a chosen value only for the
# operator token): the consumer writes to its bucket, Grafana reads it.
INFLUXDB_WRITE_TOKEN = "influxdb-write-token"
INFLUXDB_READ_TOKEN = "influxdb-read-token"
# Alert receivers' credentials: set by the operator (`pulumi config set --secret`, see
# infra/settings.py RECEIVER_SECRET_KEYS), stored in Secret Manager, read only by Alertmanager.
PAGERDUTY_ROUTING_KEY = "pagerduty-routing-key"
SMTP_PASSWORD = "smtp-password"
# Alertmanager 0.28 reads the webhook's URL from a file (`url_file`), again for every notification.
WEBHOOK_URL = "webhook-url"
RECEIVER_SECRETS = (PAGERDUTY_ROUTING_KEY, SMTP_PASSWORD, WEBHOOK_URL)
SECRETS = (*GENERATED_SECRETS, INFLUXDB_WRITE_TOKEN, INFLUXDB_READ_TOKEN, *RECEIVER_SECRETS)


@dataclass(frozen=True)
class ScopedToken:
    """An InfluxDB token for one bucket with one access, found again by its description."""

    secret: str
    access: str         # "write" or "read": the `influx auth create --<access>-bucket` flag
    description: str    # [a-z0-9-]: the script that creates it matches it in `influx auth list --json`


SCOPED_TOKENS = (
    ScopedToken(INFLUXDB_WRITE_TOKEN, "write", "hydrostream-consumer-write"),
    ScopedToken(INFLUXDB_READ_TOKEN, "read", "hydrostream-grafana-read"),
)

SECRETS_DIR = "/run/secrets/hydrostream"

KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
KAFKA_CLUSTER_ID = "GwRbAZVATIeRYXkYtp2mDA"


@dataclass(frozen=True)
class KafkaListener:
    """A named Kafka listener on every interface; the controller's is never advertised to clients."""

    name: str
    port: int
    controller: bool = False


KAFKA_LISTENERS = (KafkaListener("PLAINTEXT", KAFKA_PORT), KafkaListener("CONTROLLER", KAFKA_CONTROLLER_PORT,
                                                                         controller=True))


def kafka_listener_env(listeners: tuple[KafkaListener, ...]) -> dict[str, str]:
    """The broker environment that declares `listeners`; how each authenticates (its security protocol)
    is infra/services/kafka.py's `sasl_env`."""
    return {
        "KAFKA_LISTENERS": ",".join(f"{listener.name}://:{listener.port}" for listener in listeners),
        "KAFKA_CONTROLLER_LISTENER_NAMES": ",".join(listener.name for listener in listeners
                                                    if listener.controller),
    }


_KAFKA_LISTENER_ENV = kafka_listener_env(KAFKA_LISTENERS)

# The broker's own JMX metrics for Prometheus: the Prometheus JMX exporter's Java agent inside the
# broker's JVM serves them on this port (/metrics).
KAFKA_METRICS_PORT = 9404


# The jar is the one infra/release/broker-agent.lock pins; the config is monitoring/kafka/jmx-exporter.yml.
KAFKA_METRICS_AGENT = JavaAgent("/opt/kafka-metrics", "jmx_prometheus_javaagent.jar", "jmx-exporter.yml",
                                KAFKA_METRICS_PORT)

KAFKA = Service(
    name="kafka",
    image="apache/kafka:3.9.1",
    role=BROKER,
    ports=(Port("kafka", KAFKA_PORT), Port("controller", KAFKA_CONTROLLER_PORT),
           Port("metrics", KAFKA_METRICS_PORT)),
    env={
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": _KAFKA_LISTENER_ENV["KAFKA_LISTENERS"],
        "KAFKA_CONTROLLER_LISTENER_NAMES": _KAFKA_LISTENER_ENV["KAFKA_CONTROLLER_LISTENER_NAMES"],
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        # Stable across restarts so the storage directory is formatted only once. Kafka's storage tool
        # takes the unpadded base64url form of a random 16-byte UUID (Uuid.randomUuid().toString(),
        # 22 characters, never starting with "-"); this one was generated once that way.
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        # Every JVM started in the container reads KAFKA_OPTS (kafka-run-class.sh): a Kafka tool run with
        # `docker exec` while the broker runs must clear it (`--env KAFKA_OPTS=`), or its agent finds the
        # port taken and the tool does not start.
        "KAFKA_OPTS": KAFKA_METRICS_AGENT.java_option,
    },
    volumes=(Volume("kafka-data", "/var/lib/kafka/data"),),
    # Every user's password: the broker logs in as the admin and sets each user's SCRAM credential
    # (kafka-setup.sh), finding them by user as SECRETS_DIR/kafka-password-USER.
    secret_files=tuple(SecretFile(kafka_password(user), f"{SECRETS_DIR}/{kafka_password(user)}")
                       for user in KAFKA_USERS),
    # The broker's listener accepts connections. No Kafka CLI here: each would start a JVM that
    # inherits the broker's KAFKA_HEAP_OPTS every interval. Whoever needs the API (the topics script,
    # the jobs) retries until the broker answers.
    health_check=HealthCheck(
        command=("CMD", "bash", "-c", f"exec 3<>/dev/tcp/localhost/{KAFKA_PORT}"),
        start_period_s=60,
    ),
    user="1000",
    java_agent=KAFKA_METRICS_AGENT,
)

# The node id and internal topics' replication above are a single broker's; every broker is a node of a
# dynamic KRaft quorum (one of one on the local stack and a one-broker stack), whose
# infra.services.kafka.KafkaNode.env sets its id, quorum and replication.

INFLUXDB = Service(
    name="influxdb",
    image="influxdb:2.7.12",
    role=TSDB,
    ports=(Port("http", 8086),),
    env={
        # The image's entrypoint runs setup only while its bolt database is missing: reboots skip it.
        "DOCKER_INFLUXDB_INIT_MODE": "setup",
        "DOCKER_INFLUXDB_INIT_USERNAME": "admin",
    },
    secret_files=(
        SecretFile(INFLUXDB_ADMIN_PASSWORD, f"{SECRETS_DIR}/{INFLUXDB_ADMIN_PASSWORD}",
                   env="DOCKER_INFLUXDB_INIT_PASSWORD_FILE"),
        SecretFile(INFLUXDB_TOKEN, f"{SECRETS_DIR}/{INFLUXDB_TOKEN}",
                   env="DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"),
    ),
    volumes=(Volume("influxdb-data", "/var/lib/influxdb2"), Volume("influxdb-config", "/etc/influxdb2")),
    health_check=HealthCheck(command=("CMD", "influx", "ping")),
    # influxd 2.7 shuts down cleanly (closes its engine, logs "Stopping") on SIGINT; on docker stop's
    # SIGTERM it dies at once (exit 143) like a crash (tests/influxdb/test_influxdb_server.py).
    stop_signal="SIGINT",
)

ALERTMANAGER_PORT = 9093
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
NODE_EXPORTER_PORT = 9100
# The monitoring services' config volumes: filled from the config bundle on a VM, uploaded locally.
PROMETHEUS_CONFIG = "prometheus-config"
ALERTMANAGER_CONFIG = "alertmanager-config"
GRAFANA_PROVISIONING = "grafana-provisioning"


def _http_check(port: int, path: str) -> HealthCheck:
    """Healthy while wget inside the container gets `path` on `port` of localhost."""
    return HealthCheck(command=("CMD", "wget", "-qO-", f"http://localhost:{port}{path}"))


def _prometheus_project_service(name: str, image: str, port: int, *, storage_flag: str, config_volume: str,
                                flags: tuple[str, ...] = (),
                                secret_files: tuple[SecretFile, ...] = ()) -> Service:
    """A Prometheus-project server run as its image is built: user nobody (65534), `<name>.yml` in the
    config volume at /etc/<name>, its data at /<name> (`storage_flag`), ready at /-/ready."""
    return Service(
        name=name,
        image=image,
        role=MONITORING,
        ports=(Port("http", port),),
        command=(f"--config.file=/etc/{name}/{name}.yml", f"{storage_flag}=/{name}", *flags),
        volumes=(Volume(f"{name}-data", f"/{name}"), Volume(config_volume, f"/etc/{name}")),
        secret_files=secret_files,
        health_check=_http_check(port, "/-/ready"),
        user="65534",
    )


# Beside Prometheus on the monitoring VM (Prometheus reaches it on localhost; nothing else does). One
# instance: the gossip cluster listener is switched off. Its config (infra/render/alertmanager_config.py)
# names the receiver secrets by their container paths below.
ALERTMANAGER = _prometheus_project_service(
    "alertmanager", "prom/alertmanager:v0.28.1", ALERTMANAGER_PORT,
    storage_flag="--storage.path", config_volume=ALERTMANAGER_CONFIG, flags=("--cluster.listen-address=",),
    secret_files=tuple(SecretFile(secret, f"{SECRETS_DIR}/{secret}", optional=True)
                       for secret in RECEIVER_SECRETS),
)

PROMETHEUS = _prometheus_project_service(
    "prometheus", "prom/prometheus:v2.55.1", PROMETHEUS_PORT,
    storage_flag="--storage.tsdb.path", config_volume=PROMETHEUS_CONFIG, flags=("--web.enable-lifecycle",),
)

GRAFANA = Service(
    name="grafana",
    image="grafana/grafana:11.6.3",
    role=MONITORING,
    ports=(Port("http", GRAFANA_PORT),),
    env={
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
    },
    secret_files=(
        SecretFile(GRAFANA_ADMIN_PASSWORD, f"{SECRETS_DIR}/{GRAFANA_ADMIN_PASSWORD}",
                   env="GF_SECURITY_ADMIN_PASSWORD__FILE"),
        # Read by the InfluxDB data source's provisioning through Grafana's $__file{} expansion.
        SecretFile(INFLUXDB_READ_TOKEN, f"{SECRETS_DIR}/{INFLUXDB_READ_TOKEN}"),
    ),
    volumes=(
        Volume("grafana-data", "/var/lib/grafana"),
        Volume(GRAFANA_PROVISIONING, "/etc/grafana/provisioning"),
    ),
    health_check=HealthCheck(
        command=("CMD-SHELL", f"wget -qO- http://localhost:{GRAFANA_PORT}/api/health >/dev/null"),
    ),
    user="472",
)

NODE_EXPORTER_TEXTFILE = Volume("node-exporter-textfile", "/var/lib/node-exporter/textfile")

NODE_EXPORTER = Service(
    name="node-exporter",
    image="prom/node-exporter:v1.9.1",
    role=EVERY_VM,
    ports=(Port("metrics", NODE_EXPORTER_PORT),),
    # Reads the host's filesystems, processes and network through /host and the host's PID namespace.
    # Host jobs that Prometheus cannot scrape (the daily InfluxDB backup) leave their metrics as
    # *.prom files in the textfile volume; a volume, not a host path, so the folder always exists.
    command=("--path.rootfs=/host",
             f"--collector.textfile.directory={NODE_EXPORTER_TEXTFILE.container_path}"),
    volumes=(NODE_EXPORTER_TEXTFILE,),
    host_mounts=(HostMount("/", "/host"),),
    host_pid=True,
    health_check=_http_check(NODE_EXPORTER_PORT, "/metrics"),
)

# The Spark image's Python, which runs the jobs (and the pip package) on the local stack. spark-docker's
# 3.5.1/scala2.12-java17-python3-ubuntu/Dockerfile adds Ubuntu's python3 to its java17 build, based on
# eclipse-temurin:17-jre-jammy (Ubuntu 22.04): Python 3.10. (The `3.5.1-python3` tag is the java11
# build on eclipse-temurin:11-jre-focal, Ubuntu 20.04: Python 3.8, too old for the jobs.)
SPARK_IMAGE_PYTHON = "3.10"

SPARK = Service(
    name="spark",
    image="apache/spark:3.5.1-scala2.12-java17-python3-ubuntu",
    role=DATAPROC,
    ports=(Port("producer-metrics", contract.PRODUCER_METRICS_PORT),
           Port("consumer-metrics", contract.CONSUMER_METRICS_PORT)),
    volumes=(Volume("spark-checkpoints", "/var/lib/hydrostream/checkpoints"),),
    health_check=HealthCheck(
        command=("CMD-SHELL", f"python3 -c \"import urllib.request; urllib.request.urlopen("
                              f"'http://localhost:{contract.CONSUMER_METRICS_PORT}/metrics')\""),
        start_period_s=120,
    ),
)

SERVICES: dict[str, Service] = {
    s.name: s for s in (KAFKA, INFLUXDB, PROMETHEUS, ALERTMANAGER, GRAFANA, NODE_EXPORTER,
                         SPARK)
}


def services_for_role(role: str) -> tuple[Service, ...]:
    """The services one VM role runs (node-exporter runs on every service VM)."""
    return tuple(s for s in SERVICES.values() if s.role in (role, EVERY_VM))


@dataclass(frozen=True)
class DataprocImage:
    """A Dataproc image version and the Spark line it ships."""

    version: str
    spark: str
    scala: str
    python: str

    @property
    def kafka_connector(self) -> str:
        """Maven coordinate of Spark's Kafka source/sink for this image's Spark and Scala."""
        return f"org.apache.spark:spark-sql-kafka-0-10_{self.scala}:{self.spark}"


# image -> Spark/Scala -> connector, in one row. The pyspark pin in pyproject.toml must equal
# `spark` (a test checks it): the jobs are tested on exactly the Spark they will run on. The connector
# jars this row names are locked in infra/release/connector-jars.lock and ship with each release.
# Not yet a sub-minor: Google's 2.2.x component table (cloud.google.com/dataproc/docs/concepts/
# versioning/dataproc-release-2.2) was not readable here to find the 2.2.x that ships Spark 3.5.1
# (2.2 launched on 3.5.0, later 2.2.x ship 3.5.3); see README, Known limits.
DATAPROC_IMAGE = DataprocImage(version="2.2-debian12", spark="3.5.1", scala="2.12", python="3.11")


# --- Egress: what leaves the VPC, by name (infra/gcp/firewall.py opens exactly this, nothing else) ---

# Google APIs through Private Google Access: private.googleapis.com's four addresses, which a private
# Cloud DNS zone (infra/gcp/network.py) answers for every *.googleapis.com name. Documented at
# cloud.google.com/vpc/docs/configure-private-google-access#domain-options.
PRIVATE_GOOGLE_APIS_HOST = "private.googleapis.com"
PRIVATE_GOOGLE_APIS_RANGE = "199.36.153.8/30"
HTTPS_PORT = 443
# The public registry a container image without a registry host comes from.
DOCKER_HUB = ("registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com")
# Alertmanager's PagerDuty receiver (Events API v2, its default URL).
PAGERDUTY_EVENTS = ("events.pagerduty.com",)


def image_registries(role: str) -> tuple[str, ...]:
    """The registry hosts a VM role pulls its images from at boot (Docker Hub for an image without a
    host part), in first-seen order."""
    hosts: list[str] = []
    for service in services_for_role(role):
        first = service.image.split("/", 1)[0]
        registry = (first,) if "/" in service.image and ("." in first or ":" in first) else DOCKER_HUB
        hosts += [host for host in registry if host not in hosts]
    return tuple(hosts)
