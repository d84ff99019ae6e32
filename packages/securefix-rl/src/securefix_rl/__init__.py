"""SecureCode-style RL vulnerability repair (arXiv 2401.07031) at CPU scale."""
