"""`--scale full` backbones through transformers (imported lazily: cpu scale never needs it).

* ``WavLMLayerMean``: frozen WavLM-base-plus; the hidden states of layers 10..12 (inclusive) averaged,
  then mean-pooled over time -> a 768-d vector (official WavLMSpeakerEncoder, models/lase.py). Input:
  16 kHz mono, cropped or zero-padded to 2 s as in the official trainer and evaluators.
* ``WavLMXVector``: the WavLM-base-plus-sv baseline (WavLMForXVector's x-vector embedding).
* ``EcapaEmbedder``: the ECAPA-TDNN baseline through speechbrain, when it is installed.

Weights come from ``from_pretrained(path_or_name)``: a local directory, or a hub name when the user
has the hub cache or a network (tests use a tiny randomly initialised WavLM saved to a temp dir).
The cached WavLM features are keyed by the weights themselves (``weights_identity`` of ``weights_dir``,
``lase.data.features_key``), not by the path string: re-downloaded weights under the same path or name
give new features.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the WavLM feature cache key (``lase.data.features_code``)"""

HUB_CACHE: Path | None = None
"""the hub cache that names resolve in; None: the default (HF_HUB_CACHE / HF_HOME)"""


def _cached_snapshot(name: str) -> Path:
    """The local snapshot folder of hub model ``name`` (where its cached config.json lies); OSError if the
    hub cache does not hold it. No network (``local_files_only``)."""
    from transformers.utils import cached_file

    return Path(cached_file(name, "config.json", cache_dir=HUB_CACHE, local_files_only=True)).parent


def weights_dir(path_or_name: str) -> Path:
    """The local directory a backbone is loaded from: ``path_or_name`` itself when it is a directory, else a
    hub name's snapshot in the hub cache (downloaded first by ``from_pretrained`` when it is not cached,
    as before, where there is a network). Loading from this directory loads exactly the files that
    ``weights_identity`` hashed."""
    local = Path(path_or_name).expanduser()
    if local.is_dir():
        return local.resolve()
    # a hub repo id is "name" or "org/name"; anything else is a local path that does not exist
    if not (local.is_absolute() or path_or_name.startswith(".") or path_or_name.count("/") > 1):
        try:
            return _cached_snapshot(path_or_name)
        except OSError:
            pass
        try:  # not cached yet: let transformers fetch what WavLMModel loads, then read it from the cache
            from transformers import WavLMModel

            WavLMModel.from_pretrained(path_or_name, cache_dir=HUB_CACHE)
            return _cached_snapshot(path_or_name)
        except Exception as e:  # offline, unknown name, ...: one clear line
            raise FileNotFoundError(
                f"backbone {path_or_name!r} (LASE_WAVLM): not a local directory, not in the hub cache, and "
                f"not downloadable here ({type(e).__name__}); give a local directory"
            ) from e
    raise FileNotFoundError(f"backbone {path_or_name!r} (LASE_WAVLM): no such directory")


def weights_identity(directory: Path) -> list[list]:
    """(relative path, size, SHA-256 of the bytes) of every file under ``directory``, sorted: the weights'
    identity in the feature cache key. The bytes, not the file times, so a copy or a touch rebuilds nothing
    (as for the manifest clips' WAVs); hidden folders are skipped (a git-lfs clone's .git holds a second
    copy of the weights, the hub's .cache only download metadata). Hashing WavLM-base-plus (~380 MB) takes
    about a second, small next to featurising the corpus."""
    root = Path(directory)
    rows = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            with open(p, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            rows.append([rel.as_posix(), p.stat().st_size, digest])
    if not rows:
        raise FileNotFoundError(f"{root}: no weight files")
    return rows


CLIP_SAMPLES = 32_000  # 2 s at 16 kHz, the official crop


def crop_or_pad(wave: np.ndarray, n: int = CLIP_SAMPLES) -> np.ndarray:
    w = np.asarray(wave, dtype=np.float32)[:n]
    return np.pad(w, (0, n - len(w))) if len(w) < n else w


class WavLMLayerMean(torch.nn.Module):
    """Frozen WavLM; mean of hidden states ``layers[0]..layers[1]`` (inclusive), then mean over time."""

    def __init__(
        self, path: str, layers: tuple[int, int] = (10, 12), device: str | torch.device = "cpu"
    ) -> None:
        super().__init__()
        from transformers import WavLMModel

        self.model = WavLMModel.from_pretrained(path).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        n_states = self.model.config.num_hidden_layers + 1  # hidden_states[0] is the input to layer 1
        lo, hi = layers
        if not (0 <= lo <= hi < n_states):
            raise ValueError(f"layers {layers} outside the model's hidden states 0..{n_states - 1}")
        self.layers = layers
        self.device = torch.device(device)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        out = self.model(wave.to(self.device), output_hidden_states=True)
        lo, hi = self.layers
        layer_mean = torch.stack(out.hidden_states[lo : hi + 1]).mean(0)  # (B, frames, H)
        return layer_mean.mean(1)

    def embed(self, waves: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        rows = []
        for i in range(0, len(waves), batch_size):
            x = torch.from_numpy(np.stack([crop_or_pad(w) for w in waves[i : i + batch_size]]))
            rows.append(self(x).float().cpu().numpy())
        return np.concatenate(rows)


class WavLMXVector:
    """The WavLM-base-plus-sv baseline: x-vector embeddings of the whole clip (official bootstrap_cis.py)."""

    def __init__(self, path: str, device: str | torch.device = "cpu") -> None:
        from transformers import WavLMForXVector

        self.model = WavLMForXVector.from_pretrained(path).to(device).eval()
        self.device = torch.device(device)

    @torch.no_grad()
    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for w in waves:  # one at a time: clips differ in length and the official scorer does not pad
            x = torch.from_numpy(np.asarray(w, dtype=np.float32))[None].to(self.device)
            rows.append(self.model(input_values=x).embeddings[0].float().cpu().numpy())
        return np.stack(rows)


class EcapaEmbedder:
    """ECAPA-TDNN (speechbrain/spkrec-ecapa-voxceleb), when speechbrain is installed."""

    def __init__(self, source: str, device: str | torch.device = "cpu") -> None:
        try:
            from speechbrain.inference.speaker import EncoderClassifier
        except ImportError as e:
            raise ImportError(
                "the ECAPA baseline needs speechbrain (not a dependency of this package)"
            ) from e
        self.model = EncoderClassifier.from_hparams(source=source, run_opts={"device": str(device)})

    @torch.no_grad()
    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(
            [
                self.model.encode_batch(torch.from_numpy(np.asarray(w, np.float32))[None])
                .squeeze()
                .cpu()
                .numpy()
                for w in waves
            ]
        )
