"""SimCLR network of the notebooks: backbone -> global average pool (P3) -> Dense 256 -> ReLU (P2) -> Dense 128 ->
ReLU (P1) -> Dense 50 (the projection z that NT-Xent sees).

Linear evaluation cuts the trained network at three points (Linear_Evaluation.ipynb): P1 = ``layers[-2]`` (128-d,
after the second ReLU), P2 = ``layers[-4]`` (256-d, after the first ReLU), P3 = the backbone's pooled output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

OFFICIAL_HEAD = (256, 128, 50)


class SimCLRNet(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, head: Sequence[int] = OFFICIAL_HEAD):
        super().__init__()
        if len(head) != 3 or min(head) < 1:
            raise ValueError(f"head must be three positive widths (hidden_1, hidden_2, out), got {head}")
        self.backbone = backbone  # must provide .features(x) -> (N, feature_dim), pooled
        self.fc1 = nn.Linear(feature_dim, head[0])
        self.fc2 = nn.Linear(head[0], head[1])
        self.fc3 = nn.Linear(head[1], head[2])

    def cut_points(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p3 = self.backbone.features(x)
        p2 = torch.relu(self.fc1(p3))
        p1 = torch.relu(self.fc2(p2))
        return {"P1": p1, "P2": p2, "P3": p3, "z": self.fc3(p1)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cut_points(x)["z"]
