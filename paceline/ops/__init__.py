"""Running the system: the Apache Pulsar standalone (``broker``) and cluster (``cluster``) this machine
assembles from Maven Central, and Paceline's services as processes (``stack``) for the demo, drills,
benchmarks and tests."""
