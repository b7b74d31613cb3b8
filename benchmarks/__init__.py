"""Benchmarks (repeatable, `bench_*.py`) and one-off experiments (`experiments/`); run as modules."""
