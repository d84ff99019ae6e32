"""anyloss: see the package README."""
