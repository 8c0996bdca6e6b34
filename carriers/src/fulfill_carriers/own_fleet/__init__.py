"""The shop's own vans as a carrier: drivers' reports read as tracking events."""
