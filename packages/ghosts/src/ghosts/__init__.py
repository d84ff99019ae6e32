"""Ghosts of Softmax (arXiv 2603.13552): the radius bound rho_a = pi / Delta_a and the rho-controller."""

from ghosts.controller import AdamDirection, capped_lr
from ghosts.models import ARCHITECTURES, build_model
from ghosts.radius import (
    binary_exact_radius,
    directional_logit_derivatives,
    logit_slope_spread,
    normalised_step,
    rho_a,
    rho_a_along,
    rho_from_spread,
    unit_direction,
)

__all__ = [
    "ARCHITECTURES",
    "AdamDirection",
    "binary_exact_radius",
    "build_model",
    "capped_lr",
    "directional_logit_derivatives",
    "logit_slope_spread",
    "normalised_step",
    "rho_a",
    "rho_a_along",
    "rho_from_spread",
    "unit_direction",
]
