"""Products, nodes (places stock ships from) and stock per node, with its ledger."""
