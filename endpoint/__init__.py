"""The client edge: FIX acceptor, native protocol, risk gate, venue routing, reports (issue 6)."""
