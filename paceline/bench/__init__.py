"""Benchmarks that print figures beside their floors measured in the same run (``paceline bench ...``), and
the one percentile definition they, the demo and the drills share (``stats``)."""
