"""The segmentation networks, all from MONAI.

* ``unet_small``: a 3-level ``monai.networks.nets.UNet`` (8-16-32 channels, batch norm, no residual
  units) for the CPU scale; about 29k parameters, ~0.06 s per forward+backward of a 4 x 32^3 batch
  on one idle core.
* ``vnet``: ``monai.networks.nets.VNet`` for the Left Atrium (the paper uses a V-Net; MONAI's is
  Milletari's original design, the official one a UA-MT-style V-Net: see the README's deviations).
* ``unet3d``: ``monai.networks.nets.BasicUNet`` with 16-32-64-128-256 features, instance norm and
  dropout 0.3 (the official BraTS network is a 3D U-Net with those widths, instance norm and two
  dropout layers of 0.3).
"""

from __future__ import annotations

import torch
from torch import nn

NETWORKS = ("unet_small", "vnet", "unet3d")


def build_network(name: str, num_classes: int = 2) -> nn.Module:
    from xentlab.optional_imports import import_monai

    import_monai()
    from monai.networks.nets import BasicUNet, UNet, VNet

    if name == "unet_small":
        return UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=num_classes,
            channels=(8, 16, 32),
            strides=(2, 2),
            num_res_units=0,
            norm="batch",
        )
    if name == "vnet":
        return VNet(spatial_dims=3, in_channels=1, out_channels=num_classes, dropout_prob_down=0.5)
    if name == "unet3d":
        return BasicUNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=num_classes,
            features=(16, 32, 64, 128, 256, 16),
            norm="instance",
            dropout=0.3,
        )
    raise ValueError(f"unknown network {name!r}; choose one of {NETWORKS}")


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@torch.no_grad()
def predict_volume(
    net: nn.Module,
    image: torch.Tensor,
    roi: tuple[int, int, int],
    overlap: float = 0.5,
    sw_batch_size: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sliding-window prediction of one normalised volume [X, Y, Z]: (label map, foreground probability).

    As the official ``test_single_case``: each window's *softmax* is averaged over the windows that
    cover a voxel (MONAI ``sliding_window_inference``, constant weights), then argmax. Volumes
    smaller than the window are padded by MONAI and cropped back.
    """
    from monai.inferers import sliding_window_inference

    net.eval()
    x = image[None, None].float()
    probs = sliding_window_inference(
        x,
        roi_size=roi,
        sw_batch_size=sw_batch_size,
        predictor=lambda patch: torch.softmax(net(patch), dim=1),
        overlap=overlap,
        mode="constant",
    )
    probs = torch.as_tensor(probs)[0]
    return probs.argmax(dim=0), probs[1]
