"""Where an order ships from, and what delivery window it is promised."""
