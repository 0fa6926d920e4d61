"""calozdc.metrics."""
