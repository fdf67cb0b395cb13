"""Fleet simulator: simulated agents speaking the wire contract (tests, benchmarks, demo)."""
