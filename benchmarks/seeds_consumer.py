"""The seeds' consumer, replicated as a command line for the benchmark, and the parse-only floor.

    python benchmarks/seeds_consumer.py --mode seeds --input-path DIR --checkpoint-location DIR \
        --influx-url URL --influx-org ORG --influx-bucket B --influx-token-file F --master local[2]
    python benchmarks/seeds_consumer.py --mode floor --input-path DIR --checkpoint-location DIR

`seeds`: what the post-mortems' consumer did, `foreachBatch` + `collect()` + one influxdb-client
`Point` per row, written from the driver; raw readings only (no windows, no dead letters), with the
4 shuffle partitions its cluster set. `floor`: read the files and `from_json` them into Spark's noop
sink, the part every Spark JSON consumer pays before doing anything else. Not a job of this project.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

SEEDS_SHUFFLE_PARTITIONS = 4


def _seeds_batch(df, batch_id, url, token, org, bucket):
    """The seeds' sink: collect() the batch, one Point per row, written from the driver."""
    from hydrostream_jobs import contract
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    rows = df.collect()
    points = []
    for row in rows:
        point = Point(contract.READINGS_MEASUREMENT).tag("farm_id", row.farm_id).tag("zone", row.zone)
        point = point.tag("device_id", row.device_id)
        for name in contract.VALUE_FIELDS:
            point = point.field(name, float(getattr(row, name)))
        points.append(point.time(row.ts))
    with InfluxDBClient(url=url, token=token, org=org, timeout=600_000, enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=points)


def main(argv: list[str]) -> None:
    """Run the seeds' consumer or the parse floor over a folder of readings until it is consumed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("seeds", "floor"), required=True)
    parser.add_argument("--input-path", required=True)
    parser.add_argument("--checkpoint-location", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--influx-url")
    parser.add_argument("--influx-org")
    parser.add_argument("--influx-bucket")
    parser.add_argument("--influx-token-file")
    args = parser.parse_args(argv)
    if args.mode == "seeds" and not all(
        (args.influx_url, args.influx_org, args.influx_bucket, args.influx_token_file)
    ):
        parser.error("--mode seeds needs --influx-url, --influx-org, --influx-bucket, --influx-token-file")

    from hydrostream_jobs.schema import READING_SCHEMA
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(args.master)
        .appName(f"seeds-{args.mode}")
        .config("spark.sql.shuffle.partitions", str(SEEDS_SHUFFLE_PARTITIONS))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    parsed = spark.readStream.format("text").load(args.input_path).select(
        F.from_json("value", READING_SCHEMA).alias("j")
    ).select("j.*")
    if args.mode == "floor":
        stream = parsed.writeStream.format("noop")
    else:
        with open(args.influx_token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
        writer = partial(
            _seeds_batch, url=args.influx_url, token=token, org=args.influx_org, bucket=args.influx_bucket
        )
        stream = parsed.filter(F.col("ph").isNotNull()).writeStream.foreachBatch(writer)
    query = stream.trigger(availableNow=True).option("checkpointLocation", args.checkpoint_location).start()
    try:
        query.awaitTermination()
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
