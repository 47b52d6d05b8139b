"""Real services the tests and benchmarks start on this machine (not part of the package)."""
