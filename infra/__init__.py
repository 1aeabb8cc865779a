"""Hydrostream infrastructure: settings, sizing and service catalogs, and the Pulumi components per target."""
