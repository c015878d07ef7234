"""Doorstep: one live picture of a real-estate brokerage's work."""

__version__ = "0.1.0"
