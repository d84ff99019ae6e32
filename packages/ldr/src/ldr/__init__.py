"""ldr: see the package README."""
