"""TCA at the edge: reading the audit trail for gateway.analytics.tca and writing its reports."""
