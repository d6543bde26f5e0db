"""`sorgw bench --e2e`: the gateway, a do-nothing pass-through and the venue directly, timed end to end."""
