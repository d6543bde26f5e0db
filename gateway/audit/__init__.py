"""The audit trail: every FIX message, decision and state change, append-only and hash-chained."""
