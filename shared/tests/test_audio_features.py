import math

import numpy as np
import pytest
import torch

from xentlab.audio.features import (
    FrontendConfig,
    dct_matrix,
    deltas,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    mfcc_statistics,
    mfcc_statistics_batch,
    power_spectrogram,
    voiced_mask,
)
from xentlab.testing import assert_close

SR = 16_000


def _tone(freq: float, seconds: float = 0.5, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    return amp * torch.sin(2 * math.pi * freq * t)


def _speechlike(seed: int = 0, seconds: float = 0.6) -> torch.Tensor:
    """A few harmonics with a wobbling pitch plus a little noise and a silent tail."""
    g = torch.Generator().manual_seed(seed)
    n = int(SR * seconds)
    t = torch.arange(n, dtype=torch.float64) / SR
    f0 = 120 + 20 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    x = sum(torch.sin(k * phase) / k for k in range(1, 8)) * 0.2
    x = x + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    return torch.cat([x, torch.zeros(SR // 5, dtype=torch.float64)])


def test_mel_scale_hand_values():
    # m(700) = 2595 log10(2); m(0) = 0; the inverse undoes it
    assert hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert hz_to_mel(0.0) == 0.0
    f = np.array([0.0, 100.0, 1000.0, 7999.0])
    assert np.allclose(mel_to_hz(hz_to_mel(f)), f)


def test_filterbank_shape_peaks_and_centres():
    fb = mel_filterbank(512, SR, 40, 20.0, 8000.0)
    assert fb.shape == (40, 257)
    assert float(fb.min()) >= 0.0 and float(fb.max()) <= 1.0
    # centres are increasing, and adjacent triangles overlap (rising edge of j+1 = falling edge of j)
    centres = fb.argmax(1)
    assert torch.all(centres[1:] >= centres[:-1])
    edges = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(8000.0), 42))
    # a bin exactly at a centre frequency would be 1; the peak bin is the one nearest the centre
    nearest = np.rint(edges[1:-1] * 512 / SR).astype(int)
    assert np.all(np.abs(centres.numpy() - nearest) <= 1)


def test_dct_is_orthonormal_and_matches_scipy():
    from scipy.fft import dct

    d = dct_matrix(40, 40)
    assert_close(d @ d.T, torch.eye(40, dtype=torch.float64), atol=1e-12)
    v = np.random.default_rng(0).normal(size=40)
    assert np.allclose(d.numpy() @ v, dct(v, type=2, norm="ortho"))


def test_power_spectrum_matches_a_direct_dft():
    # float64 reference for one frame: pre-emphasis, zero padding of center=True, periodic Hann
    # window of win_length centred in n_fft, then |sum_n x[n] exp(-2 pi i k n / N)|^2 by a direct sum.
    cfg = FrontendConfig(n_fft=64, win_length=48, hop_length=16, n_mels=8, n_mfcc=4)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=200))
    p = power_spectrogram(x, cfg)[0]
    y = torch.cat([x[:1], x[1:] - 0.97 * x[:-1]]).numpy()
    padded = np.pad(y, (32, 32))
    t = 3  # frame t starts at t * hop in the padded signal
    frame = padded[t * 16 : t * 16 + 64]
    n = np.arange(48)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 48)
    window = np.zeros(64)
    window[8:56] = hann
    k = np.arange(33)[:, None]
    spectrum = (frame * window * np.exp(-2j * np.pi * k * np.arange(64) / 64)).sum(1)
    assert_close(p[t], torch.from_numpy(np.abs(spectrum) ** 2), rtol=1e-9, atol=1e-9)


def test_pure_tone_lands_in_the_right_mel_band():
    cfg = FrontendConfig()
    for f in (300.0, 1000.0, 3000.0):
        band = int(log_mel_spectrogram(_tone(f), cfg)[0].mean(0).argmax())
        edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(8000.0), cfg.n_mels + 2))
        assert edges[band] < f < edges[band + 2]


def test_deltas_of_a_ramp_are_its_slope():
    # c_t = 3 t: sum_n n (3(t+n) - 3(t-n)) / (2 sum n^2) = 3 for interior frames (N = 2)
    c = (3.0 * torch.arange(10, dtype=torch.float64))[None, :, None]
    d = deltas(c, 2)[0, :, 0]
    assert torch.allclose(d[2:-2], torch.full((6,), 3.0, dtype=torch.float64))
    # at the edges the frames are replicated: d_0 = (1*(3-0) + 2*(6-0)) / 10 = 1.5
    assert d[0].item() == pytest.approx(1.5)


def test_mfcc_statistics_are_gain_invariant():
    # a gain g adds 2 log g to every log-mel band: only c0 changes, and c0 is not kept;
    # the voiced-frame threshold is relative to the loudest frame, so it does not move either
    x = _speechlike()
    assert_close(mfcc_statistics(0.1 * x), mfcc_statistics(x), rtol=1e-6, atol=1e-6)


def test_statistics_ignore_trailing_silence():
    # trailing digital silence falls below the voiced threshold; only frames whose window reaches
    # into the padding change, and those are excluded too when the padding is long
    cfg = FrontendConfig(deltas=False)
    x = _speechlike(1)
    mask = voiced_mask(x, cfg)[0]
    assert not mask[-5:].any()
    longer = torch.cat([x, torch.zeros(SR)])
    assert_close(mfcc_statistics(longer, cfg), mfcc_statistics(x, cfg), rtol=1e-9, atol=1e-9)


def test_shapes_dims_and_batch():
    cfg = FrontendConfig()
    x = _speechlike(2)
    assert mfcc(x, cfg).shape[-1] == 20
    assert mfcc_statistics(x, cfg).shape == (1, 80) and cfg.dim == 80
    assert FrontendConfig(deltas=False).dim == 40
    waves = [x.numpy(), _speechlike(3, 0.3).numpy()]
    batch = mfcc_statistics_batch(waves, cfg)
    assert batch.shape == (2, 80) and batch.dtype == np.float32
    assert np.allclose(batch[0], mfcc_statistics(x, cfg)[0].numpy(), atol=1e-5)
    assert mfcc_statistics_batch([], cfg).shape == (0, 80)
    # deterministic: a fixed function of the waveform
    assert np.array_equal(mfcc_statistics_batch(waves, cfg), batch)


def test_bad_inputs():
    with pytest.raises(ValueError, match="waveform"):
        mfcc_statistics(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="float"):
        mfcc_statistics(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(ValueError, match="win_length"):
        FrontendConfig(win_length=1024, n_fft=512)
    with pytest.raises(ValueError, match="n_mfcc"):
        FrontendConfig(n_mfcc=40, n_mels=40)


def test_features_module_hashes_its_own_source():
    # caches of these features key on this digest (xentlab.data.cache, "The key rule"; lase.data.features_code)
    from xentlab.audio import features
    from xentlab.data.cache import source_digest

    assert features.SOURCE_DIGEST == source_digest(features.__file__)
