"""The Kafka broker: one KRaft node (broker and controller) on a private VM, its log on the data disk."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from hydrostream_jobs import contract

from infra import catalog, cloud_init, sizing
from infra.gcp.service_vm import ServiceVm, ServiceVmArgs
from infra.settings import KafkaSettings, StackSettings

MS_PER_HOUR = 3_600_000


def topics(kafka: KafkaSettings) -> tuple[cloud_init.TopicSpec, ...]:
    """The readings topic and its dead-letter topic, with the stack's partitions and retention."""
    return (
        cloud_init.TopicSpec(contract.READINGS_TOPIC, kafka.partitions, kafka.retention_hours * MS_PER_HOUR),
        cloud_init.TopicSpec(contract.DEAD_LETTER_TOPIC, kafka.partitions,
                             kafka.dead_letter_retention_hours * MS_PER_HOUR),
    )


@dataclass(frozen=True)
class KafkaBrokerArgs:
    settings: StackSettings
    subnet: pulumi.Input[str]
    service_account_email: pulumi.Input[str]


class KafkaBroker(pulumi.ComponentResource):
    """One KRaft broker on a private VM; exposes `bootstrap_servers` ("<ip>:9092") and `internal_ip`."""

    def __init__(self, name: str, args: KafkaBrokerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:messaging:KafkaBroker", name, None, opts)
        kafka = args.settings.kafka
        user_data = cloud_init.broker_cloud_init(sizing.kafka_heap_mb(kafka.machine), topics(kafka))
        vm = ServiceVm(name, ServiceVmArgs(
            settings=args.settings,
            role=catalog.BROKER,
            machine=kafka.machine,
            disk_gb=kafka.disk_gb,
            subnet=args.subnet,
            service_account_email=args.service_account_email,
            user_data=user_data,
        ), pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None))

        port = catalog.KAFKA.port("kafka")
        self.internal_ip = vm.internal_ip
        self.bootstrap_servers: pulumi.Output[str] = vm.internal_ip.apply(lambda ip: f"{ip}:{port}")
        self.register_outputs({"bootstrap_servers": self.bootstrap_servers, "internal_ip": self.internal_ip})
