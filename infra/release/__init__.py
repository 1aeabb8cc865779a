"""The release: the jobs bundle, its connector jars, and promotion between stacks."""
