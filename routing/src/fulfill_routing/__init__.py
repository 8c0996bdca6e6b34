"""Route planner for same-day delivery waves: a pure library."""
