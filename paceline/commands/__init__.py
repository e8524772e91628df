"""What each ``paceline`` command does, by room (``paceline.cli`` only parses and dispatches here)."""
