"""xentlab: the core library shared by every paper package."""

__version__ = "0.1.0"
