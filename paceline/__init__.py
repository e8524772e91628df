"""Paceline's operations tooling, one room per job: the command line (``cli``, which parses and dispatches
to ``commands``), the broker, the cluster and the services as processes (``ops``), the demo (``demo``),
drills and the soak (``drills``), benchmarks (``bench``) and reports (``reports``). The top of the
dependency graph: no service imports it."""

__version__ = "0.1.0"
