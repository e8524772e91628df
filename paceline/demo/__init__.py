"""``paceline demo``: the broker and the whole pipeline working real parent orders over FIX (``run``), and
the pipeline part it drives (``pipeline``)."""
