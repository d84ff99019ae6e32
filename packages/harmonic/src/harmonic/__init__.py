"""harmonic: see the package README."""
