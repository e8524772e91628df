"""Process plumbing every Paceline service shares: settings, logging, metrics and the typed Pulsar bus."""
