"""Market-data buses: how venue book snapshots reach the gateway."""
