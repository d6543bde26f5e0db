"""sor-gateway: a FIX smart-order-routing gateway."""

__version__ = "0.1.0"
