"""Benchmarks of issue 7: each figure a ratio against a baseline measured in the same run.

`python -m bench` (or `make bench`) runs them all and prints the table; see bench/RESULTS.md.
"""
