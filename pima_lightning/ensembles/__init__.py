"""The engine that trains many copies of the core's network in one run (replicas, cv and tune members)."""
