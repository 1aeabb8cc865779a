"""The local Docker environment: every catalog service on one network, wired together.

`pulumi up -s local` pulls the catalog images, writes the secrets the services read into their
secrets volumes (generated the first time, `infra.local.secrets`), starts Kafka (with its metrics agent:
the locked jar and its config uploaded into the container), InfluxDB, Prometheus, Alertmanager, Grafana
and node-exporter (returning once each is healthy), creates the
Kafka topics, then starts the Spark container with both jobs. Ports are published on the loopback
address only. Grafana's admin password is in no output: the `grafana_admin_password_command` output prints it.

`pulumi destroy -s local` removes everything except the data and secrets volumes (`retain_on_delete`),
so the next `up` finds Kafka's log, the checkpoints, the stored series and the secrets InfluxDB and
Grafana were set up with again. To remove those as well, run the `remove_data_volumes` command this
stack prints, after the destroy: it selects the volumes by label, so it still works once the stack
(and its outputs) are gone.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from typing import Any

from infra import catalog, roles, sizing
from infra.local.jobs import SECRETS as SPARK_SECRETS
from infra.local.jobs import SPARK_UID, SparkJobs, SparkJobsArgs
from infra.local.network import LocalNetwork, LocalNetworkArgs
from infra.local.secrets import (
    LocalScopedTokens,
    LocalScopedTokensArgs,
    LocalSecrets,
    LocalSecretsArgs,
    SecretReader,
)
from infra.local.services import (
    RETAINED_LABEL,
    SCRIPT_DIR,
    KafkaTopics,
    KafkaTopicsArgs,
    PublishedPort,
    ServiceContainer,
    ServiceContainerArgs,
    Upload,
    container_name,
    pulled_image,
    uploads_digest,
)
from infra.model import StackModel
from infra.release import connector_jars
from infra.release.bundle import check_release_pin
from infra.render.alertmanager_config import CONFIG_MOUNT as ALERTMANAGER_CONFIG_MOUNT
from infra.render.alertmanager_config import alertmanager_config_files
from infra.render.grafana_config import GrafanaDataSources, grafana_provisioning_files
from infra.render.prometheus_volume import CONFIG_MOUNT, ScrapeTargets, prometheus_config_files
from infra.render.templating import template_text
from infra.services.kafka import (
    SETUP_SCRIPTS,
    START_SCRIPTS,
    KafkaSpec,
    cluster_nodes,
    kafka_setup_args,
    kafka_start_command,
    metrics_agent_config,
)

PREFIX = "hydrostream"

# Kafka advertises its in-network listener under its container name, which the host cannot
# resolve; this extra listener advertises the loopback address for clients on the host.
KAFKA_HOST_PORT = 9094
KAFKA_HOST_LISTENER = catalog.KafkaListener("HOST", KAFKA_HOST_PORT)

# uid that reads each service's secret files: the user the process runs as after the image's
# entrypoint (InfluxDB's drops from root to `influxdb`, 1000; Grafana runs as the catalog's user).
SECRET_READER_UIDS = {catalog.INFLUXDB.name: "1000", catalog.GRAFANA.name: catalog.GRAFANA.user or "0",
                      catalog.KAFKA.name: catalog.KAFKA.user or "0"}
# The one broker's place: a quorum of itself, formatted and started by the VMs' kafka-start.sh.
KAFKA_RACK = "local"


def secret_readers() -> tuple[SecretReader, ...]:
    """Every container that reads secrets: the catalog services with secret files, and the Spark jobs.

    Each reads no more than its role reads on GCP (infra/roles.py): a container granted a secret its
    role may not read is refused here, before anything is declared.
    """
    # Optional secret files are the alert receivers': none on the local stack (settings refuse them).
    services = [s for s in catalog.SERVICES.values() if any(not f.optional for f in s.secret_files)]
    readers = (*(SecretReader.of(s, SECRET_READER_UIDS[s.name]) for s in services),
               SecretReader(catalog.SPARK.name, SPARK_UID, SPARK_SECRETS))
    for reader in readers:
        role = roles.of(catalog.SERVICES[reader.service].role)
        beyond = sorted(set(reader.secrets) - set(role.reads))
        if beyond:
            raise ValueError(f"{reader.service} would read {beyond}, which its role {role.name} does not "
                             f"read (infra/roles.py)")
    return readers


def kafka_service(spec: KafkaSpec, bind_address: str) -> catalog.Service:
    """The spec's Kafka with its in-network listener advertised by container name, plus a host one; a
    single-node dynamic quorum started by kafka-start.sh (uploaded to SCRIPT_DIR, `kafka_scripts`), as on
    a broker VM, every listener authenticating."""
    local = spec.with_listener(KAFKA_HOST_LISTENER)
    (in_network, *_) = spec.client_listeners
    (node,) = cluster_nodes((KAFKA_RACK,), ("localhost",), min_insync_replicas=1)
    env = local.env({in_network.name: container_name(PREFIX, spec.service),
                     KAFKA_HOST_LISTENER.name: bind_address}, node)
    script, *script_args = kafka_start_command(node)
    return dataclasses.replace(local.service, env=env,
                               command=("bash", f"{SCRIPT_DIR}/{script}", *script_args))


def kafka_scripts(names: tuple[str, ...]) -> dict[str, str]:
    """Template scripts by file name, in the order given (the entry first)."""
    return {name: template_text(name) for name in names}


def metrics_agent_uploads(service: catalog.Service) -> tuple[Upload, ...]:
    """The service's Java agent (the locked jar, its config) as files uploaded into its container: the jar
    the VMs check by sha256, the config they mount."""
    agent = service.java_agent
    if agent is None:
        raise ValueError(f"service {service.name!r} loads no Java agent")
    jar = connector_jars.broker_agent()
    return (Upload(f"{agent.folder}/{agent.jar}", source=str(connector_jars.cached(jar)),
                   source_sha256=jar.sha256),
            Upload(f"{agent.folder}/{agent.config}", content=metrics_agent_config()))


def remove_volumes_command(labels: dict[str, str]) -> str:
    """A shell command that removes the volumes carrying all of `labels` (run it after a destroy)."""
    filters = " ".join(f"--filter {shlex.quote(f'label={key}={value}')}"
                       for key, value in sorted(labels.items()))
    return f"docker volume rm $(docker volume ls --quiet {filters})"


def deploy(model: StackModel) -> dict[str, Any]:
    """Declare the local environment's resources from the stack model; return the stack outputs."""
    if model.local is None:
        raise ValueError(f"stack {model.stack!r} is not on the local target")
    bind = model.local.bind_address
    labels = dict(model.labels)
    release = check_release_pin(model.stack, model.jobs.release_pin, model.bundle.digest)

    network = LocalNetwork("network", LocalNetworkArgs(name=PREFIX, labels=labels))

    def service_args(service: catalog.Service, config: tuple[str, str, Mapping[str, str]] | None = None,
                     **overrides: Any) -> ServiceContainerArgs:
        # config: (volume, where it is mounted, its files): uploaded, the volume named by their digest.
        if config is not None:
            volume, mount, files = config
            uploads = tuple(Upload(f"{mount}/{path}", content=text) for path, text in sorted(files.items()))
            overrides.update(uploads=uploads, config_volumes={volume: uploads_digest(uploads)})
        return ServiceContainerArgs(service=service, prefix=PREFIX, network_name=network.network_name,
                                    bind_address=bind, memory_mb=sizing.local_container_mb(service.name),
                                    labels=labels,
                                    **overrides)

    specs = model.services
    kafka = kafka_service(specs.kafka, bind)
    kafka_bootstrap = f"{container_name(PREFIX, kafka)}:{kafka.port('kafka')}"
    # Pulled before the broker: the secrets it reads are written by a container of it (any image with bash
    # would do).
    kafka_image = pulled_image("kafka-image", kafka)
    secrets = LocalSecrets("secrets", LocalSecretsArgs(
        readers=secret_readers(), image=kafka_image.image_id, prefix=PREFIX,
        memory_mb=sizing.LOCAL_SECRETS_TOOLS_MB,
        labels=labels))
    start_scripts = tuple(Upload(f"{SCRIPT_DIR}/{name}", content=text, permissions="0755")
                          for name, text in kafka_scripts(START_SCRIPTS).items())
    broker = ServiceContainer("kafka", service_args(
        kafka, published=(PublishedPort(KAFKA_HOST_PORT),),
        uploads=(*start_scripts, *metrics_agent_uploads(kafka)),
        secrets_volume=secrets.volume_names[catalog.KAFKA.name], image=kafka_image, wait=True,
        depends_on=(secrets.succeeded,)))
    topics = KafkaTopics("kafka-topics", KafkaTopicsArgs(
        kafka_image=broker.image_id, network_name=network.network_name,
        setup_args=kafka_setup_args(specs.kafka, kafka_bootstrap), scripts=kafka_scripts(SETUP_SCRIPTS),
        secrets_volume=secrets.volume_names[catalog.KAFKA.name], prefix=PREFIX,
        memory_mb=sizing.LOCAL_KAFKA_TOOLS_MB, labels=labels,
        depends_on=(secrets.succeeded, broker.container)))

    influx_http = catalog.INFLUXDB.port("http")
    influx_url = f"http://{container_name(PREFIX, catalog.INFLUXDB)}:{influx_http}"
    influxdb = ServiceContainer("influxdb", service_args(
        dataclasses.replace(specs.influxdb.service, env=specs.influxdb.env),
        secrets_volume=secrets.volume_names[catalog.INFLUXDB.name],
        published=(PublishedPort(influx_http),), wait=True, depends_on=(secrets.succeeded,)))
    tokens = LocalScopedTokens("influxdb-tokens", LocalScopedTokensArgs(
        readers=secret_readers(), volume_names=secrets.volume_names, influxdb_image=influxdb.image_id,
        influxdb_url=influx_url, org=specs.influxdb.org, bucket=specs.influxdb.bucket,
        admin_user=specs.influxdb.admin_user, network_name=network.network_name, prefix=PREFIX,
        memory_mb=sizing.LOCAL_TOKENS_TOOLS_MB, labels=labels,
        depends_on=(secrets.succeeded, influxdb.container)))

    spark_host = container_name(PREFIX, catalog.SPARK)
    targets = ScrapeTargets.for_hosts(
        stack=model.stack, spark_driver=spark_host,
        kafka_hosts=(container_name(PREFIX, kafka),),
        node_hosts=(container_name(PREFIX, catalog.NODE_EXPORTER),),
        influxdb_host=container_name(PREFIX, catalog.INFLUXDB),
        alertmanager_host=container_name(PREFIX, catalog.ALERTMANAGER),
        grafana_host=container_name(PREFIX, catalog.GRAFANA))
    # No receivers on the local stack: alerts show in Alertmanager's UI (and the watchdog with them).
    alertmanager_http = catalog.ALERTMANAGER.port("http")
    alertmanager = ServiceContainer("alertmanager", service_args(
        dataclasses.replace(catalog.ALERTMANAGER, secret_files=()),
        config=(catalog.ALERTMANAGER_CONFIG, ALERTMANAGER_CONFIG_MOUNT,
                alertmanager_config_files(model.stack, model.receivers)),
        published=(PublishedPort(alertmanager_http),), wait=True))
    prometheus_http = catalog.PROMETHEUS.port("http")
    prometheus = ServiceContainer("prometheus", service_args(
        catalog.PROMETHEUS,
        config=(catalog.PROMETHEUS_CONFIG, CONFIG_MOUNT, prometheus_config_files(targets, model.alerts)),
        published=(PublishedPort(prometheus_http),), wait=True, depends_on=(alertmanager.container,)))

    node_exporter = ServiceContainer("node-exporter", service_args(catalog.NODE_EXPORTER, wait=True))

    provisioning = catalog.GRAFANA.env["GF_PATHS_PROVISIONING"]
    sources = GrafanaDataSources(
        stack=model.stack, influxdb_host=container_name(PREFIX, catalog.INFLUXDB),
        prometheus_host=container_name(PREFIX, catalog.PROMETHEUS),
        org=specs.influxdb.org, bucket=specs.influxdb.bucket)
    grafana_http = catalog.GRAFANA.port("http")
    grafana = ServiceContainer("grafana", service_args(
        catalog.GRAFANA,
        config=(catalog.GRAFANA_PROVISIONING, provisioning, grafana_provisioning_files(sources)),
        secrets_volume=secrets.volume_names[catalog.GRAFANA.name],
        published=(PublishedPort(grafana_http),), wait=True,
        depends_on=(secrets.succeeded, tokens.succeeded, influxdb.container, prometheus.container)))

    spark = SparkJobs("spark", SparkJobsArgs(
        spark=model.local.spark, flags=model.jobs.flags, bundle=model.bundle,
        bootstrap_servers=kafka_bootstrap,
        influx_url=influx_url,
        influx_org=specs.influxdb.org, influx_bucket=specs.influxdb.bucket,
        secrets_volume=secrets.volume_names[catalog.SPARK.name], prefix=PREFIX,
        network_name=network.network_name, bind_address=bind, labels=labels,
        depends_on=(secrets.succeeded, tokens.succeeded, broker.container, influxdb.container,
                    topics.succeeded)))

    services = (broker, influxdb, prometheus, alertmanager, node_exporter, grafana, spark.service)
    data_volumes = sorted(name for service in services for name in service.data_volumes)
    password_file = next(s.container_path for s in catalog.GRAFANA.secret_files
                         if s.secret == catalog.GRAFANA_ADMIN_PASSWORD)
    return {
        "grafana_url": f"http://{bind}:{grafana_http}",
        "grafana_admin_user": catalog.GRAFANA.env["GF_SECURITY_ADMIN_USER"],
        # Run as Grafana's user, the one that may read the file.
        "grafana_admin_password_command": shlex.join(["docker", "exec", grafana.name, "cat", password_file]),
        "influxdb_url": f"http://{bind}:{influx_http}",
        "prometheus_url": f"http://{bind}:{prometheus_http}",
        "alertmanager_url": f"http://{bind}:{alertmanager_http}",
        "kafka_bootstrap": f"{bind}:{KAFKA_HOST_PORT}",
        "kafka_bootstrap_in_network": kafka_bootstrap,
        "network": network.network_name,
        # service -> container: `make verify STACK=local` builds its inventory from this.
        "containers": {service.service_name: service.name for service in services},
        "data_volumes": data_volumes,
        "secret_volumes": sorted(secrets.retained_volumes),
        "remove_data_volumes": remove_volumes_command({**labels, RETAINED_LABEL: "true"}),
        "jobs_release": release,
    }
