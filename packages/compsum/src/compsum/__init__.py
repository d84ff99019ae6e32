"""compsum: see the package README."""
