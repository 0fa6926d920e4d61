"""calozdc.losses."""
