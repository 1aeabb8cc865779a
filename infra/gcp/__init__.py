"""Google Cloud components: one file per logical thing, each a ComponentResource with its Args."""
