"""Scaling-law fits shared by the scaling-law packages (ar-scaling, and the others that reuse them).

``power_law``: the power-law-plus-constant law L(x) = L_inf + (x0/x)^alpha (Henighan et al. 2020,
Kaplan et al. 2020) with R^2 and a bootstrap over points, and the pure power law y = a x^beta used
for the compute-optimal model size N_opt(C).
"""

from xentlab.scaling.power_law import (
    PowerLawFit,
    PurePowerLawFit,
    bootstrap_power_law_plus_constant,
    fit_power_law,
    fit_power_law_plus_constant,
)

__all__ = [
    "PowerLawFit",
    "PurePowerLawFit",
    "bootstrap_power_law_plus_constant",
    "fit_power_law",
    "fit_power_law_plus_constant",
]
