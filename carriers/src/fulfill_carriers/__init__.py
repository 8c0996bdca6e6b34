"""Carrier adapters, normalised tracking statuses and webhook signatures."""
