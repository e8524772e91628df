"""The client edge: FIX acceptor, native protocol, risk gate, venue routing, reports."""
