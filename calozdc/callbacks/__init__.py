"""calozdc.callbacks."""
