"""Audio frontends (pure torch: torchaudio does not install beside our torch); import from the submodules."""
