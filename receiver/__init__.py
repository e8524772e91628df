"""Market-data ingestion: sources, normalisation, one Pulsar topic per equity."""
