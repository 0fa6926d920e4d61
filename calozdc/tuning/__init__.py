"""calozdc.tuning."""
