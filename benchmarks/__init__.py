"""Benchmarks (``make bench``): timing claims live here, not in the tests."""
