"""Benchmarks of the lakehouse's hot paths; ``python -m bench --help`` lists the cases.

Each case measures wall time and peak memory of competing implementations on the same
generated input, each implementation in a fresh process, and checks that they agree on the
result before any number is reported. Results are written up in ``BENCHMARKS.md``.
"""
