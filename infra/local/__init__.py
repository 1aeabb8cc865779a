"""The local stack: the service catalog on one machine's Docker engine (pulumi-docker)."""
