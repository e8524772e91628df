"""A FIX 4.4 client library (a QuickFIX initiator acting as an institutional client): the demo, the drills,
``paceline bench fix`` and the tests trade through it. It speaks the dialect of ``models.fix``."""

from fixclient.client import FixClient, fields

__all__ = ["FixClient", "fields"]
