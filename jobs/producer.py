"""Entry point of the producer Spark job (submitted as the main file; the package ships as a zip)."""

import sys

from hydrostream_jobs.cli import parse_producer_args
from hydrostream_jobs.logs import run_logged
from hydrostream_jobs.producer_job import run
from hydrostream_jobs.session import job_session


def main(argv: list[str]) -> None:
    """Parse the command line and produce readings to Kafka or to files."""
    args = parse_producer_args(argv)
    with job_session("hydrostream-producer", args.master) as spark:
        run(spark, args)


if __name__ == "__main__":
    run_logged(main, sys.argv[1:], "producer")
