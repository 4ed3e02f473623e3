"""Benchmarks: stratmap against the floor and the peers (see README.md; ``make bench``)."""
