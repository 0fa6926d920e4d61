"""calozdc.cli."""
