"""Venue simulators: matching cores that run with or without FIX sockets in front of them."""
