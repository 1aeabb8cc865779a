"""The progress listener's gauges, fed by Spark-shaped progress events and by a live stream."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from hydrostream_jobs import metrics as metrics_module
from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.consumer_job import CONSUMER_QUERY, run
from hydrostream_jobs.metrics import (
    ConsumerMetrics,
    ConsumerProgressListener,
    start_metrics_server,
    stop_metrics_server,
)
from hydrostream_jobs.progress import BatchLog
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql.streaming.listener import QueryProgressEvent

from tests.ports import free_port


def progress_event(**changes) -> QueryProgressEvent:
    """A QueryProgressEvent as Spark 3.5 writes it (StreamingQueryProgress.json) for a Kafka source."""
    progress = {
        "id": "8c1b2b5e-0a3c-4a7e-9d43-2f6f1d3c9a10",
        "runId": "0b7a4e0c-5d1f-4e8a-b7c2-6a9d8e3f1c22",
        "name": "consumer",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "batchId": 7,
        "batchDuration": 2500,
        "numInputRows": 5000,
        "inputRowsPerSecond": 1234.5,
        "processedRowsPerSecond": 2000.0,
        "durationMs": {"addBatch": 2300, "triggerExecution": 2500},
        "eventTime": {
            "avg": "2026-11-23T09:58:00.000Z",
            "max": "2026-11-23T09:59:00.000Z",
            "min": "2026-11-23T09:57:00.000Z",
            "watermark": "2026-11-23T09:49:00.000Z",
        },
        "stateOperators": [
            {
                "operatorName": "stateStoreSave",
                "numRowsTotal": 120,
                "numRowsUpdated": 30,
                "allUpdatesTimeMs": 5,
                "numRowsRemoved": 0,
                "allRemovalsTimeMs": 0,
                "commitTimeMs": 10,
                "memoryUsedBytes": 1000,
                "numRowsDroppedByWatermark": 4,
                "numShufflePartitions": 2,
                "numStateStoreInstances": 2,
                "customMetrics": {},
            }
        ],
        "sources": [
            {
                "description": "KafkaV2[Subscribe[hydro.readings]]",
                "startOffset": {"hydro.readings": {"0": 100}},
                "endOffset": {"hydro.readings": {"0": 5100}},
                "latestOffset": {"hydro.readings": {"0": 5125}},
                "numInputRows": 5000,
                "inputRowsPerSecond": 1234.5,
                "processedRowsPerSecond": 2000.0,
                "metrics": {
                    "avgOffsetsBehindLatest": "25.0",
                    "maxOffsetsBehindLatest": "25",
                    "minOffsetsBehindLatest": "25",
                },
            }
        ],
        "sink": {"description": "ForeachBatchSink", "numOutputRows": -1},
    }
    progress.update(changes)
    return QueryProgressEvent.fromJson(json.loads(json.dumps({"progress": progress})))


def scrape(port: int) -> str:
    """The metrics endpoint's exposition text, as Prometheus reads it."""
    deadline = time.time() + 5
    while True:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    return body


def samples_of(body: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def serve(registry) -> tuple[object, int]:
    """The metrics server on a free port (port 0 disables it, so the test names one: tests/ports.py
    chooses it outside the ephemeral range, where no other process is handed it before the bind)."""
    port = free_port()
    return start_metrics_server(port, registry), port


def test_a_progress_event_sets_every_gauge_and_the_endpoint_serves_them(monkeypatch):
    now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC).timestamp()
    monkeypatch.setattr(metrics_module.time, "time", lambda: now)
    metrics = ConsumerMetrics()
    listener = ConsumerProgressListener(metrics, BatchLog())
    listener.onQueryProgress(progress_event())
    listener.onQueryProgress(progress_event(batchId=8, batchDuration=700, inputRowsPerSecond=99.0))

    server, port = serve(metrics.registry)
    try:
        samples = samples_of(scrape(port))
    finally:
        stop_metrics_server(server)
    query = (("query", "consumer"),)
    # 10:00:05 now, watermark 09:49:00: 11 min 5 s behind.
    assert samples[("hydro_consumer_watermark_lag_seconds", ())] == 665.0
    assert samples[("hydro_consumer_input_rows_per_second", query)] == 99.0
    assert samples[("hydro_consumer_kafka_offsets_behind_latest", ())] == 25.0
    assert samples[("hydro_consumer_batch_duration_seconds_count", query)] == 2.0
    assert samples[("hydro_consumer_batch_duration_seconds_sum", query)] == pytest.approx(3.2)
    assert samples[("hydro_consumer_batch_duration_seconds_bucket", (("le", "1.0"), *query))] == 1.0
    assert samples[("hydro_consumer_late_rows_dropped_total", ())] == 8.0


def test_progress_without_a_watermark_rate_or_kafka_source_leaves_those_gauges_alone(monkeypatch):
    now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC).timestamp()
    monkeypatch.setattr(metrics_module.time, "time", lambda: now)
    metrics = ConsumerMetrics()
    listener = ConsumerProgressListener(metrics, BatchLog())
    listener.onQueryProgress(progress_event())
    listener.onQueryProgress(
        progress_event(
            inputRowsPerSecond=float("nan"),
            eventTime={"watermark": "1970-01-01T00:00:00.000Z"},
            sources=[
                {
                    "description": "FileStreamSource[file:/in]",
                    "startOffset": None,
                    "endOffset": {"logOffset": 0},
                    "latestOffset": None,
                    "numInputRows": 10,
                    "inputRowsPerSecond": 0.0,
                    "processedRowsPerSecond": 10.0,
                }
            ],
        )
    )
    sample = metrics.registry.get_sample_value
    assert sample("hydro_consumer_input_rows_per_second", {"query": "consumer"}) == 1234.5
    assert sample("hydro_consumer_kafka_offsets_behind_latest") == 25.0
    assert sample("hydro_consumer_watermark_lag_seconds") == 665.0


def test_the_metrics_endpoint_serves_the_design_names():
    metrics = ConsumerMetrics()
    metrics.records.labels(status="valid").inc(3)
    server, port = serve(metrics.registry)
    try:
        body = scrape(port)
    finally:
        stop_metrics_server(server)
    assert samples_of(body)[("hydro_consumer_records_total", (("status", "valid"),))] == 3.0
    families = {family.name for family in text_string_to_metric_families(body)}
    for name in (
        "hydro_consumer_points_written",
        "hydro_consumer_sink_errors",
        "hydro_consumer_batch_duration_seconds",
        "hydro_consumer_input_rows_per_second",
        "hydro_consumer_watermark_lag_seconds",
        "hydro_consumer_kafka_offsets_behind_latest",
    ):
        assert name in families, name


def reading(seconds: int) -> str:
    moment = datetime.fromtimestamp(1_767_225_600 + seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {
            "farm_id": "farm-1",
            "zone": "bay-1",
            "device_id": f"hp-{seconds % 3}",
            "ts": moment,
            "ph": 6.0,
            "ec_ms_cm": 1.5,
            "water_temp_c": 20.0,
            "air_temp_c": 21.0,
            "humidity_pct": 60.0,
            "light_ppfd": 300.0,
            "dissolved_oxygen_mg_l": 8.0,
        }
    )


@pytest.mark.slow
def test_a_live_stream_feeds_the_gauges(spark, tmp_path):
    # The newest reading comes first: every batch after the first runs with the same watermark.
    folder = tmp_path / "input"
    folder.mkdir()
    for index, seconds in enumerate((3000, 0, 60)):
        (folder / f"part-{index}.txt").write_text(reading(seconds) + "\n" + reading(seconds + 1) + "\n")
        time.sleep(0.05)  # files are taken in modification-time order
    args = parse_consumer_args(
        [
            *("--source", "files", "--input-path", str(folder), "--max-files-per-trigger", "1"),
            *("--sink", "noop", "--dead-letter-path", str(tmp_path / "dlq")),
            *("--checkpoint-location", str(tmp_path / "checkpoints"), "--metrics-port", "0"),
        ]
    )
    started = time.time()
    metrics = run(spark, args, ConsumerMetrics())
    sample = metrics.registry.get_sample_value
    query = {"query": CONSUMER_QUERY}
    # Three batches: run() waits for the query's last listener events before it returns.
    assert sample("hydro_consumer_batch_duration_seconds_count", query) == 3
    assert sample("hydro_consumer_batch_duration_seconds_sum", query) > 0
    assert sample("hydro_consumer_input_rows_per_second", query) > 0
    assert sample("hydro_consumer_records_total", {"status": "valid"}) == 6
    # Watermark = newest event time (2026-01-01T00:50:01Z) - 10 min, measured while the stream ran.
    watermark = 1_767_225_600 + 3001 - 600
    lag = sample("hydro_consumer_watermark_lag_seconds")
    assert started - watermark - 1 <= lag <= time.time() - watermark + 1
