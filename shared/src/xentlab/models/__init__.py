"""Small models built from config (MLP, CNN, tiny transformers); see the submodules."""
