"""Offline simulation (`sorgw simulate`): the real router and order engine against the real matching cores, no
sockets."""
