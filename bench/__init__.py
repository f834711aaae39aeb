"""Benchmarks: each runs with one command and ends by printing one JSON line."""
