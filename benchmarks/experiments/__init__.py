"""One-off experiments behind decisions; their reports are kept in benchmarks/results/."""
