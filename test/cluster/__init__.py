"""Several midge nodes as one broker over a NATS cluster (docs/cluster.md)."""
