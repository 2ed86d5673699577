"""Selection algorithms: pure functions over numpy arrays (no I/O, no torch, no HTTP)."""
