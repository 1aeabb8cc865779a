"""Service specs: each service computed once per stack, for every target, by the stack model.

A spec holds what a service is wherever it runs (image, ports, environment with secret references
only, heap and memory limits, topics, health check, volumes): the GCP VMs render it to cloud-init
(infra/render/cloud_init.py) and the local stack to Docker containers (infra/local/). The model
(infra/model.py) makes them: Kafka's heap from the memory the broker is given (`kafka_spec` in
infra/services/kafka.py), InfluxDB's GOMEMLIMIT likewise (infra/services/influxdb.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.services.influxdb import InfluxDbSpec
from infra.services.kafka import KafkaSpec


@dataclass(frozen=True)
class ServiceSpecs:
    """One stack's service specs."""

    kafka: KafkaSpec
    influxdb: InfluxDbSpec
