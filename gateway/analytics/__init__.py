"""Execution analytics the router reads: markouts, per-venue scores and adaptive dark-pool allocation."""
