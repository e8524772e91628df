"""Order book, LOBSTER reader, synthetic market, fill and impact model."""
