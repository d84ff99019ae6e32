"""SPO (arXiv 2409.17791) reconstructed at CPU scale: see the package README."""
