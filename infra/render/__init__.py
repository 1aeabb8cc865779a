"""Renderers: pure functions from a stack's facts to files (cloud-init, Prometheus, Grafana, Alertmanager)."""
