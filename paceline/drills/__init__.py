"""Proving the promises under failure: fault drills (``drill``: a fault injected mid-execution, then every
promise checked from the topics), the faults they know (``faults``), and the desk's-day soak (``soak``)."""
