"""A fixed, untrained log-mel / MFCC-statistics frontend in pure torch.

Why: speaker-encoder papers put a trainable head on a frozen backbone (WavLM, ECAPA). Without the
backbone's weights (no network at cpu scale) the stand-in is the classic speaker-recognition
frontend: MFCCs (the cepstrum of the log-mel spectrum, Davis & Mermelstein 1980) summarised by their
mean and standard deviation over voiced frames (utterance-level "statistics pooling"), with deltas.
Nothing here is learned, so the frontend is a fixed function of the waveform, like a frozen backbone.

Pipeline for one waveform x at ``sample_rate``:

1. pre-emphasis  y[n] = x[n] - a x[n-1]  (a = 0.97; flattens the spectral tilt of voiced speech);
2. STFT with a Hann window of ``win_length`` samples, hop ``hop_length``, ``n_fft`` bins, centred frames;
   power P[t, k] = |Y[t, k]|^2;
3. mel filterbank: ``n_mels`` triangles with peak 1, equally spaced on the HTK mel scale
   m(f) = 2595 log10(1 + f / 700) between ``f_min`` and ``f_max``; log-mel L = log(max(F P, eps));
4. MFCC: the orthonormal DCT-II of L over the mel axis, keeping c1..c_n (c0, the log energy, is
   dropped: then a gain change, which adds a constant to every log-mel band, changes no kept
   coefficient, since the DCT of a constant vector is zero beyond c0);
5. deltas: the regression slope d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum n^2), edges replicated;
6. voiced frames: frame energy within ``voiced_db`` dB of the utterance's loudest frame;
7. statistics: mean and std over voiced frames of the MFCCs (and of the deltas): a fixed-size vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key of the features it computes (xentlab.data.cache,
"The key rule"; e.g. ``lase.data.frozen_features``)"""


@dataclass(frozen=True)
class FrontendConfig:
    """The frontend's fixed settings (defaults: 25 ms windows, 10 ms hop at 16 kHz).

    n_mfcc: kept cepstral coefficients c1..c_n_mfcc (c0 excluded).
    deltas: also pool the delta coefficients (doubles the output size).
    delta_width: N of the delta regression (frames on each side).
    voiced_db: frames quieter than the loudest frame by more than this are ignored.
    """

    sample_rate: int = 16_000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    n_mfcc: int = 20
    f_min: float = 20.0
    f_max: float | None = None  # None = Nyquist
    preemphasis: float = 0.97
    deltas: bool = True
    delta_width: int = 2
    voiced_db: float = 40.0
    log_floor: float = 1e-10

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} must be <= n_fft {self.n_fft}")
        if not (1 <= self.n_mfcc < self.n_mels):
            raise ValueError(f"n_mfcc must be in [1, n_mels), got {self.n_mfcc} with n_mels={self.n_mels}")
        if not (0 <= self.f_min < self.nyquist_hz):
            raise ValueError(f"f_min must be in [0, Nyquist), got {self.f_min}")
        if self.f_max is not None and not (self.f_min < self.f_max <= self.sample_rate / 2):
            raise ValueError(f"f_max must be in (f_min, Nyquist], got {self.f_max}")

    @property
    def nyquist_hz(self) -> float:
        return self.sample_rate / 2

    @property
    def dim(self) -> int:
        """Size of the statistics vector."""
        return 2 * self.n_mfcc * (2 if self.deltas else 1)


def hz_to_mel(f):
    """HTK mel scale: m = 2595 log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters with peak 1, centres equally spaced in mel.

    Filter j rises linearly from edge j to centre j+1 and falls to edge j+2, where the n_mels + 2
    edges are equally spaced on the mel scale between f_min and f_max, evaluated at the FFT bin
    frequencies k * sample_rate / n_fft.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    fb = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(fb)


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) orthonormal DCT-II: D[k, n] = s_k cos(pi k (2n + 1) / (2 n_in)),
    s_0 = sqrt(1/n_in), s_k = sqrt(2/n_in) (scipy.fft.dct(type=2, norm="ortho"))."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    d = np.cos(math.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    d[0] *= math.sqrt(0.5)
    return torch.from_numpy(d)


def _as_batch(wave) -> torch.Tensor:
    x = torch.as_tensor(wave)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected a waveform (T,) or a batch (B, T), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float waveform in [-1, 1], got dtype {x.dtype}")
    return x


def power_spectrogram(wave, cfg: FrontendConfig = FrontendConfig()) -> torch.Tensor:
    """(B, frames, n_fft//2 + 1) power of the pre-emphasised, Hann-windowed, centred STFT."""
    x = _as_batch(wave)
    if x.shape[-1] < 2:
        raise ValueError("waveform too short (need at least 2 samples)")
    x = torch.cat([x[:, :1], x[:, 1:] - cfg.preemphasis * x[:, :-1]], dim=1)
    window = torch.hann_window(cfg.win_length, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.abs().pow(2).transpose(1, 2)


def log_mel_spectrogram(wave, cfg: FrontendConfig = FrontendConfig()) -> torch.Tensor:
    """(B, frames, n_mels) natural-log mel energies."""
    power = power_spectrogram(wave, cfg)
    fb = mel_filterbank(cfg.n_fft, cfg.sample_rate, cfg.n_mels, cfg.f_min, cfg.f_max).to(power)
    return torch.log(torch.clamp(power @ fb.T, min=cfg.log_floor))


def mfcc(wave, cfg: FrontendConfig = FrontendConfig()) -> torch.Tensor:
    """(B, frames, n_mfcc): c1..c_n_mfcc of the orthonormal DCT-II of the log-mel spectrum."""
    logmel = log_mel_spectrogram(wave, cfg)
    d = dct_matrix(cfg.n_mfcc + 1, cfg.n_mels).to(logmel)
    return (logmel @ d.T)[..., 1:]


def deltas(c: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas along the frame axis (-2): sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2)."""
    if width < 1:
        raise ValueError("delta width must be >= 1")
    frames = c.shape[-2]
    idx = torch.arange(frames, device=c.device)
    num = torch.zeros_like(c)
    for n in range(1, width + 1):
        ahead = c.index_select(-2, (idx + n).clamp(max=frames - 1))
        behind = c.index_select(-2, (idx - n).clamp(min=0))
        num = num + n * (ahead - behind)
    return num / (2 * sum(n * n for n in range(1, width + 1)))


def voiced_mask(wave, cfg: FrontendConfig = FrontendConfig()) -> torch.Tensor:
    """(B, frames) bool: frame energy within ``voiced_db`` dB of the loudest frame of its utterance."""
    energy = power_spectrogram(wave, cfg).sum(-1).clamp_min(cfg.log_floor)
    db = 10.0 * torch.log10(energy)
    return db >= db.max(dim=-1, keepdim=True).values - cfg.voiced_db


def mfcc_statistics(wave, cfg: FrontendConfig = FrontendConfig()) -> torch.Tensor:
    """(B, cfg.dim): [mean(c), std(c), mean(delta c), std(delta c)] over each utterance's voiced frames.

    Statistics are over voiced frames only, so padding or trailing silence does not change them.
    Computed in float64 and returned as float64.
    """
    x = _as_batch(wave).to(torch.float64)
    c = mfcc(x, cfg)
    streams = [c, deltas(c, cfg.delta_width)] if cfg.deltas else [c]
    mask = voiced_mask(x, cfg).to(c.dtype)[..., None]  # (B, frames, 1)
    n = mask.sum(1)  # (B, 1), >= 1: the loudest frame is always voiced
    out = []
    for s in streams:
        mean = (s * mask).sum(1) / n
        var = (((s - mean[:, None]) ** 2) * mask).sum(1) / n
        out += [mean, var.sqrt()]
    return torch.cat(out, dim=-1)


def mfcc_statistics_batch(
    waves: Sequence[np.ndarray | torch.Tensor], cfg: FrontendConfig = FrontendConfig()
) -> np.ndarray:
    """(N, cfg.dim) float32 statistics of variable-length waveforms (one STFT per clip)."""
    if len(waves) == 0:
        return np.zeros((0, cfg.dim), dtype=np.float32)
    rows = [mfcc_statistics(torch.as_tensor(np.asarray(w, dtype=np.float64)), cfg)[0] for w in waves]
    return torch.stack(rows).numpy().astype(np.float32)
