"""Amazon Multi-Channel Fulfillment: its client, the mapping of Amazon's models, the adapter that
tracks its packages, and a sandbox of its API."""
