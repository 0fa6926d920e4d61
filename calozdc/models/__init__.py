"""calozdc.models."""
