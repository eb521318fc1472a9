"""Benchmarks (`make bench`): measured against a real stack, never part of `make test`."""
