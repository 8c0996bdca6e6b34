"""Restock: demand forecasts per sku and node, and what to move or buy before it runs out."""
