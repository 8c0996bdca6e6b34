"""Notices to customers: what happened to their order, on the channels they chose."""
