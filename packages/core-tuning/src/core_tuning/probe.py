"""Linear probe of a frozen backbone: the standard measure of how strong a self-supervised representation is
(SimCLR / MoCo report it). Used to choose the cpu-scale pre-training length on VALIDATION data
(scripts/select_protocol.py) and recorded by every unit for the checkpoint it fine-tunes."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression


@torch.no_grad()
def frozen_features(backbone: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Pooled features h of un-augmented images, BatchNorm in eval mode (float64 numpy)."""
    backbone.eval()
    return (
        torch.cat([backbone.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        .double()
        .numpy()
    )


def linear_probe_accuracy(
    f_train: np.ndarray, y_train: np.ndarray, f_eval: np.ndarray, y_eval: np.ndarray, c: float = 1.0
) -> float:
    """Accuracy on (f_eval, y_eval) of a multinomial logistic regression fitted on (f_train, y_train).

    Features are standardised with the training mean / std (a constant feature keeps std 1); L2 strength
    1/c (scikit-learn's default c = 1), lbfgs to convergence. Deterministic."""
    if len(f_train) != len(y_train) or len(f_eval) != len(y_eval):
        raise ValueError("features and labels differ in length")
    mu, sd = f_train.mean(0), f_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit((f_train - mu) / sd, y_train)
    return float((clf.predict((f_eval - mu) / sd) == y_eval).mean())
