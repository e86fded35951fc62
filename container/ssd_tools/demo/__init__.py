"""A demo SSD the repository trains itself on synthetic shape scenes (no model-zoo download)."""
