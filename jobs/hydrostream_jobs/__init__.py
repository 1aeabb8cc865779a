"""Hydrostream's Spark jobs: pure, importable steps shared by the producer and the consumer."""
