"""Hydrostream infrastructure: catalogs and (to come) the Pulumi components that use them."""
