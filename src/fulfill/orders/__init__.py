"""Orders placed by storefronts, their fulfillments, and the order's timeline."""
