"""Orthogonal Projection Loss (Ranasinghe et al., ICCV 2021): CE + OPL on small images, clean and with label noise."""
