"""calozdc.layers."""
