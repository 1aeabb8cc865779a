"""Tools run beside Pulumi: the offline plan and the deployed jobs' status check."""
