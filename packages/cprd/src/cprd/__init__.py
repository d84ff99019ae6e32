"""CPRD: contrastive partial ranking distillation (Chen et al., CVPR 2024, arXiv 2407.07479)."""

from cprd.losses import itc_loss, kl_distill_loss, partial_ranking_loss

__all__ = ["itc_loss", "kl_distill_loss", "partial_ranking_loss"]
