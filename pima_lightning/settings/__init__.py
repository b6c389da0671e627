"""Checks of the settings a config or a checkpoint holds: types, ranges and what can be built from them."""
