"""AfterShip, a tracking aggregator: its webhook adapter and the mapping of its tags."""
