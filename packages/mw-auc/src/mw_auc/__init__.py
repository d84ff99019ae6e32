"""MW loss (Mann-Whitney / AUC loss for dual encoders, arXiv 2510.00137) and its retrieval experiment."""
