"""Consumer capacity: executors x cores x the measured per-core rate; settings refuse above half of it."""

import re

import pytest

from infra import capacity, settings, sizing
from infra.tools import mocks

PER_CORE = sizing.CONSUMER_READINGS_PER_CORE


def sized(executors: int, cores: int) -> sizing.SparkSizing:
    return sizing.SparkSizing(
        yarn_memory_mb=0, yarn_vcores=0, executor_cores=cores, executor_memory_mb=0,
        executor_overhead_mb=0, executors_per_worker=0, consumer_executors=executors,
        producer_executors=1, driver_memory_mb=0, driver_overhead_mb=0, shuffle_partitions=0)


def test_capacity_is_executors_times_cores_times_the_per_core_rate():
    consumer = capacity.consumer_capacity(sized(3, 4), rate=2000, readings_per_core=1000)
    assert consumer.cores == 12
    assert consumer.readings_per_second == 12_000
    assert consumer.max_rate == 6_000
    assert consumer.headroom == 6.0
    assert consumer.fits


@pytest.mark.parametrize(("rate", "fits"), [(6_000, True), (6_001, False)])
def test_a_rate_fits_up_to_half_the_capacity(rate, fits):
    assert capacity.consumer_capacity(sized(3, 4), rate, readings_per_core=1000).fits is fits


def test_the_report_shows_capacity_rate_and_headroom():
    lines = "\n".join(capacity.report(capacity.consumer_capacity(sized(3, 4), 2000, 1000), 2000))
    assert "3 executors x 4 cores x 1000 readings/s per core = 12000 readings/s" in lines
    assert "2000 readings/s (hydrostream:jobs.rate; at most 6000)" in lines
    assert "6.0x the configured rate" in lines


def test_the_measured_rate_is_recorded_with_its_command_and_date():
    assert PER_CORE > 0
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sizing.CONSUMER_THROUGHPUT_MEASURED_ON)
    command = sizing.CONSUMER_THROUGHPUT_COMMAND
    assert "jobs/producer.py --sink files" in command
    assert "jobs/consumer.py" in command and "--master 'local[1]'" in command
    assert "--sink influxdb" in command and "--trigger available-now" in command


def dev(**jobs_and_dataproc) -> dict:
    config = mocks.stack_config("dev")
    for section in ("jobs", "dataproc"):
        values = {k.split("__")[1]: v for k, v in jobs_and_dataproc.items() if k.startswith(section)}
        if values:
            config[f"hydrostream:{section}"] = {**(config.get(f"hydrostream:{section}") or {}), **values}
    return config


# dev: 2 x e2-standard-4 workers = 8 vCPUs in executors of 2 cores, 4 slots; one for the
# application masters, one for the producer, 2 consumer executors = 4 consumer cores.
DEV_MAX_RATE = 4 * PER_CORE // 2


def test_dev_accepts_a_rate_of_half_its_capacity():
    accepted = settings.parse_settings("dev", dev(jobs__rate=DEV_MAX_RATE))
    assert accepted.jobs.rate == DEV_MAX_RATE


def test_dev_refuses_a_rate_above_half_its_capacity_naming_the_keys_to_change():
    with pytest.raises(settings.SettingsError) as refused:
        settings.parse_settings("dev", dev(jobs__rate=DEV_MAX_RATE + 1))
    message = str(refused.value)
    assert "stack 'dev'" in message and "nothing was deployed" in message
    assert (f"hydrostream:jobs.rate = {DEV_MAX_RATE + 1}: expected at most {DEV_MAX_RATE} readings/s"
            in message)
    assert "hydrostream:dataproc.worker" in message and "hydrostream:dataproc.workers" in message
    assert f"2 executors x 2 cores process at {PER_CORE} readings/s per core" in message


def test_more_workers_lift_the_limit():
    # 4 workers: 8 slots - 2 = 6 consumer executors x 2 cores = 12 cores, so 6 x the per-core rate fits.
    rate = 6 * PER_CORE
    with pytest.raises(settings.SettingsError):
        settings.parse_settings("dev", dev(jobs__rate=rate))
    assert settings.parse_settings("dev", dev(jobs__rate=rate, dataproc__workers=4)).jobs.rate == rate


def test_the_local_target_is_not_held_to_dataproc_executors():
    local = settings.parse_settings("local", {"hydrostream:target": "local",
                                              "hydrostream:jobs": {"rate": 1_000_000}})
    assert local.jobs.rate == 1_000_000
    lines = "\n".join(capacity.report(None, 1_000_000))
    assert f"needs at least {-(-1_000_000 // (PER_CORE // 2))} of them" in lines


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_gcp_stack_file_fits_its_consumer(stack):
    loaded = settings.parse_settings(stack, mocks.stack_config(stack))
    consumer = capacity.consumer_capacity(loaded.spark, loaded.jobs.rate)
    assert consumer.headroom >= 2
