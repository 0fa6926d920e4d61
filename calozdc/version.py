"""calozdc version (one place, read by setup.cfg and written into every file we save)."""

__version__ = "0.1.0"
