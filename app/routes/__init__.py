"""HTTP routes (no torch here: they reach models through the service)."""
