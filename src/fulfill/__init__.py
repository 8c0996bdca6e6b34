"""fulfill: same-day order fulfillment service."""

__version__ = "0.1.0"
