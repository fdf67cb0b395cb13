"""apiserver: the read-only HTTP API over the projection database."""
