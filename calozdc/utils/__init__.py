"""calozdc.utils: small helpers shared by the library (progress bars)."""

from calozdc.utils.progress import batch_ranges, progress

__all__ = ["batch_ranges", "progress"]
