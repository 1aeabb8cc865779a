"""Entry point of the consumer Spark job (submitted as the main file; the package ships as a zip)."""

import sys

from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.consumer_job import run
from hydrostream_jobs.logs import run_logged
from hydrostream_jobs.session import job_session


def main(argv: list[str]) -> None:
    """Parse the command line and run the consumer until its query ends or fails."""
    args = parse_consumer_args(argv)
    with job_session("hydrostream-consumer", args.master, args.shuffle_partitions) as spark:
        run(spark, args)


if __name__ == "__main__":
    run_logged(main, sys.argv[1:], "consumer")
