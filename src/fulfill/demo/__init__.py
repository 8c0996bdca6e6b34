"""``fulfill demo``: a day of a shop in a real city, on the embedded stack, at accelerated time.

``city`` holds the places, ``shop`` seeds them and writes the day's orders, ``stack`` starts the
service with its sandboxes on one shared simulated clock, ``day`` runs the day (orders, vans,
trouble) and ``report`` tells how it went, from the database.
"""
