"""The core: order state, routing and market views; pure Python, no I/O, no quickfix."""
