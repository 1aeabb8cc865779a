"""The stack model is plain data derived from the settings, without Pulumi: names and sizes by hand."""

import dataclasses

import pulumi

from infra.model import derive
from infra.settings import parse_settings
from infra.tools import mocks


def values(value):
    """Every leaf value of a model (dataclasses, mappings, sequences), depth first."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from values(getattr(value, item.name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from values(item)
    else:
        yield value


def test_prods_model_names_and_sizes_by_hand():
    model = derive(parse_settings("prod", mocks.stack_config("prod")))
    gcp = model.gcp
    # Three brokers, numbered, broker 1 in the stack's zone (europe-west1-d), the others in the region's
    # other zones in order.
    assert [(vm.name, vm.zone) for vm in gcp.brokers] == [
        ("hydrostream-prod-broker-1", "europe-west1-d"), ("hydrostream-prod-broker-2", "europe-west1-b"),
        ("hydrostream-prod-broker-3", "europe-west1-c")]
    assert (gcp.influxdb.name, gcp.monitoring.name, gcp.cluster.name) == (
        "hydrostream-prod-tsdb", "hydrostream-prod-monitoring", "hydrostream-prod")
    assert gcp.bucket("influxdb-backups") == "hydrostream-prod-influxdb-backups"
    # n2-standard-4 brokers (16 GB): a quarter of it is the heap; n2-highmem-4 InfluxDB (32 GB): 60%.
    assert model.services.kafka.heap_mb == 4096
    assert model.services.influxdb.memory_limit_mb == 32768 * 6 // 10 // 256 * 256
    assert model.jobs.flags.read_cap == 300_000 and model.jobs.release_pin == "0" * 64
    assert model.local is None


def test_the_model_holds_no_pulumi_value_and_cannot_be_changed():
    for stack in ("local", "dev"):
        model = derive(parse_settings(stack, mocks.stack_config(stack)))
        assert not [v for v in values(model) if isinstance(v, pulumi.Output | pulumi.Resource)]
        try:
            model.stack = "other"  # type: ignore[misc]
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError("the model must be frozen")


def test_the_broker_replacement_finds_prods_brokers_by_name_and_zone():
    # What scripts/kafka-broker-gcp.sh reads: prod's three brokers, broker 1 in the stack's zone.
    from infra.tools import replace_target

    target = replace_target.replace_target(derive(parse_settings("prod", mocks.stack_config("prod"))))
    assert target["project"] == "hydrostream-prod"
    assert [target[f"broker_{n}"] for n in (1, 2, 3)] == [
        "hydrostream-prod-broker-1 europe-west1-d", "hydrostream-prod-broker-2 europe-west1-b",
        "hydrostream-prod-broker-3 europe-west1-c"]
    assert (target["unit"], target["container"]) == ("hydrostream-kafka.service", "kafka")


def test_alert_thresholds_by_hand_from_the_stack_files():
    dev = derive(parse_settings("dev", mocks.stack_config("dev")))
    prod = derive(parse_settings("prod", mocks.stack_config("prod")))
    # Both trigger every 30 s with a 10 min watermark: the objective is 60 s, the batch bound 30 s, and
    # the watermark lag bound 600 + 30 + 60 s.
    for model in (dev, prod):
        assert (model.alerts.freshness_objective_seconds, model.alerts.batch_seconds,
                model.alerts.watermark_lag_seconds) == (60, 30, 690)
        assert model.jobs.flags.freshness_objective == "60s"
        assert model.alerts.error_budget == 0.01
    # A partition's 60 s of traffic: dev 500/s over 6 partitions, prod 2,000/s over 12.
    assert (dev.alerts.offsets_behind, prod.alerts.offsets_behind) == (5000, 10000)


def test_a_slower_trigger_and_more_partitions_move_the_thresholds():
    config = {**mocks.stack_config("dev"), "hydrostream:jobs": {"trigger": "1m"},
              "hydrostream:kafka": {"brokers": 1, "partitions": 7}}
    alerts = derive(parse_settings("dev", config)).alerts
    # Objective 60 + 30 = 90 s; 500 / 7 a second per partition, for 90 s: 6,428.6 -> 6,429.
    assert (alerts.freshness_objective_seconds, alerts.batch_seconds) == (90, 60)
    assert alerts.watermark_lag_seconds == 600 + 60 + 90
    assert alerts.offsets_behind == 6429
