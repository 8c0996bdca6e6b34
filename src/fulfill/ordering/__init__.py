"""The use cases over the domains: placing, cancelling and re-sourcing an order, and a promise
as a dry run of placing one. Domains below never import this package."""
