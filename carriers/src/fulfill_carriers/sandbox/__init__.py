"""The sandbox parcel carrier: its adapter, the mapping of its codes, and the sandbox server that
stands for the shop's parcel carrier in tests, the demo and the tracking bench."""
