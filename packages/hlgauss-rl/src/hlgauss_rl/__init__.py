"""hlgauss-rl: value functions trained by classification (HL-Gauss, two-hot, C51) against regression (arXiv 2403.03950)."""
