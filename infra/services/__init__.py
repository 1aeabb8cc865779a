"""Service specs: each service computed once per stack from settings and sizing, for every target.

A spec holds what a service is wherever it runs (image, ports, environment with secret references
only, heap and memory limits, topics, health check, volumes): the GCP VMs render it to cloud-init
(infra/render/cloud_init.py) and the local stack to Docker containers (infra/local/). Where Kafka's
heap comes from, on GCP and locally: `kafka_spec` in infra/services/kafka.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import catalog, sizing
from infra.services.influxdb import InfluxDbSpec, influxdb_spec
from infra.services.kafka import KafkaSpec, kafka_spec
from infra.settings import StackSettings


@dataclass(frozen=True)
class ServiceSpecs:
    """One stack's service specs."""

    kafka: KafkaSpec
    influxdb: InfluxDbSpec


def service_specs(settings: StackSettings) -> ServiceSpecs:
    """The stack's specs: on GCP sized by each VM's shape, on the local stack by each container's limit."""
    if settings.gcp is None:
        kafka_mb = sizing.local_container_mb(catalog.KAFKA.name)
        influxdb_mb = sizing.local_container_mb(catalog.INFLUXDB.name)
    else:
        kafka_mb, influxdb_mb = settings.kafka.machine.memory_mb, settings.influxdb.machine.memory_mb
    return ServiceSpecs(kafka=kafka_spec(settings.kafka, kafka_mb),
                        influxdb=influxdb_spec(settings.influxdb, influxdb_mb))
