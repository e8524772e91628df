"""Paceline: the command line, broker management, demo and benchmarks (the top of the dependency graph)."""

__version__ = "0.1.0"
