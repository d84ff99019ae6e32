"""The clips LASE trains and evaluates on, and their frozen-backbone features.

* cpu / smoke scale: the espeak-ng corpus of ``xentlab.data.speech`` (en / hi / ta / te; a speaker is a
  voice variant with its pitch and speed; disjoint training and held-out speakers).
* full scale: the paper's corpora when the user has them locally, in the official manifest layout
  (praxelhq/lase, scripts/codeswitch_pairs.py): a directory with ``manifest.jsonl``, one JSON object per
  clip with ``voice_id``, ``lang`` and ``wav_path`` (relative to the directory), 16-bit PCM WAV files.
  One directory for training (Praxel/codeswitch-pairs-lase) and one for held-out voices
  (-lase-heldout or -lase-indian).

Features are computed once per (clips, frontend, code) and cached with ``xentlab.data.cache_dir``; the key holds
``features_code(name)``, a hash of the code that reads the clips and computes the features (xentlab.data.cache,
"The key rule"), and ``Clips.key``, which names the clips themselves: the espeak corpus's own key (config and
generator code), or for manifest clips the manifests' text and the SHA-256 of every WAV file's bytes (so a
re-recorded or edited WAV under an unchanged manifest gives new features, not the stale cached ones). For
WavLM the key also holds the weights' identity (size and SHA-256 of every file of the model directory,
``lase.backbone.weights_identity``), so re-downloaded weights under the same path or hub name give new
features too (``features_key``).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xentlab.data import speech as _speech
from xentlab.data.cache import cached_arrays, code_key, source_digest
from xentlab.data.speech import LANGUAGES, SpeechCorpusConfig, load_speech_corpus, resample_int16

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the feature cache key (xentlab.data.cache, "The key rule")"""


def features_code(name: str) -> str:
    """The code part of the feature cache key of backbone ``name``: this module (``read_wav``, the clips),
    ``xentlab.data.speech`` (``resample_int16``), the backbone's own module (``xentlab.audio.features`` for
    ``mfcc``, ``lase.backbone`` for ``wavlm``) and the libraries whose numbers end up in the features.
    (The espeak clips' key already carries the corpus generator's code; manifest clips' key hashes the
    manifests and the bytes of every WAV they list, ``manifest_clips``.)"""
    if name == "mfcc":
        from xentlab.audio import features

        return code_key(SOURCE_DIGEST, _speech.SOURCE_DIGEST, features.SOURCE_DIGEST,
                        libraries=("numpy", "scipy", "torch"))  # fmt: skip
    if name == "wavlm":
        from lase import backbone

        return code_key(SOURCE_DIGEST, _speech.SOURCE_DIGEST, backbone.SOURCE_DIGEST,
                        libraries=("numpy", "scipy", "torch", "transformers"))  # fmt: skip
    raise ValueError(f"unknown backbone {name!r}: use 'mfcc' or 'wavlm'")


@dataclass
class Clips:
    """Waveforms (float32, 16 kHz) with a speaker id, a language id and a split per clip."""

    waves: list[np.ndarray]
    speaker: np.ndarray  # int64
    language: np.ndarray  # int64, index into ``languages``
    split: np.ndarray  # "train" | "heldout"
    languages: tuple[str, ...]
    key: str  # identifies the clips, for the feature cache
    info: dict  # provenance: corpus manifest, generation time, ...

    def idx(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def espeak_clips(corpus_cfg: dict) -> Clips:
    cfg = SpeechCorpusConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in corpus_cfg.items()})
    t0 = time.perf_counter()
    corpus = load_speech_corpus(cfg)
    manifest = json.loads(corpus.manifest_path.read_text())
    return Clips(
        waves=corpus.waveforms(),
        speaker=corpus.speaker_ids,
        language=corpus.language_ids,
        split=corpus.splits,
        languages=cfg.languages,
        key=f"espeak-{cfg.key()}",
        info={
            "source": "espeak-ng (xentlab.data.speech)",
            "espeak_ng": manifest["espeak_ng"],
            "manifest": str(corpus.manifest_path),
            "n_clips": len(corpus),
            "n_speakers": {"train": cfg.n_train_speakers, "heldout": cfg.n_heldout_speakers},
            "audio_seconds": manifest["total_seconds_of_audio"],
            "generation_seconds": corpus.generation_seconds,
            "load_seconds": round(time.perf_counter() - t0, 2),
            "speakers": manifest["speakers"],
        },
    )


def read_wav(path: Path, sample_rate: int = 16_000, data: bytes | None = None) -> np.ndarray:
    """A 16-bit PCM WAV as float32 mono at ``sample_rate`` (stdlib ``wave`` + scipy resampling).
    ``data``: the file's bytes, when the caller has read them already (``path`` then only names it)."""
    with wave.open(io.BytesIO(data) if data is not None else str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * f.getsampwidth()}-bit")
        rate, channels = f.getframerate(), f.getnchannels()
        x = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, channels)
    mono = x.mean(1).round().astype(np.int16) if channels > 1 else x[:, 0]
    return resample_int16(mono, rate, sample_rate).astype(np.float32) / 32768.0


def manifest_clips(
    train_dir: str | Path, heldout_dir: str | Path, languages: tuple[str, ...] = LANGUAGES
) -> Clips:
    """Clips from two official-layout manifest directories (see the module docstring).

    ``Clips.key`` hashes both manifests' text and, per clip, its split, ``wav_path`` and the SHA-256 of the
    WAV file's bytes (read once, for the hash and the decoding), so it changes whenever any audio does."""
    waves, speakers, langs, splits = [], [], [], []
    voice_ids: dict[str, int] = {}
    digest = hashlib.sha256()
    for split, d in (("train", Path(train_dir)), ("heldout", Path(heldout_dir))):
        manifest = d / "manifest.jsonl"
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{manifest} not found: expected the official manifest layout (voice_id, lang, wav_path)"
            )
        text = manifest.read_text(encoding="utf-8")
        digest.update(text.encode())
        for line in text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"voice_id", "lang", "wav_path"} - set(row)
            if missing:
                raise ValueError(f"{manifest}: a row lacks {sorted(missing)}")
            if row["lang"] not in languages:
                raise ValueError(f"{manifest}: language {row['lang']!r} not in {languages}")
            voice = f"{split}:{row['voice_id']}"  # held-out voices are new voices even if a name repeats
            voice_ids.setdefault(voice, len(voice_ids))
            raw = (d / row["wav_path"]).read_bytes()
            digest.update(f"{split}|{row['wav_path']}|".encode())
            digest.update(hashlib.sha256(raw).digest())
            waves.append(read_wav(d / row["wav_path"], data=raw))
            speakers.append(voice_ids[voice])
            langs.append(languages.index(row["lang"]))
            splits.append(split)
    return Clips(
        waves=waves,
        speaker=np.array(speakers, dtype=np.int64),
        language=np.array(langs, dtype=np.int64),
        split=np.array(splits),
        languages=tuple(languages),
        key=f"manifest-{digest.hexdigest()[:16]}",
        info={
            "source": "manifest",
            "train_dir": str(train_dir),
            "heldout_dir": str(heldout_dir),
            "n_clips": len(waves),
        },
    )


def load_clips(data_cfg: dict) -> Clips:
    """``{"source": "espeak", "corpus": {...}}`` or ``{"source": "manifest", "train_dir": ..., "heldout_dir": ...}``."""
    if data_cfg["source"] == "espeak":
        return espeak_clips(data_cfg["corpus"])
    if data_cfg["source"] == "manifest":
        return manifest_clips(data_cfg["train_dir"], data_cfg["heldout_dir"])
    raise ValueError(f"unknown data source {data_cfg['source']!r}: use 'espeak' or 'manifest'")


def features_key(clips: Clips, backbone_cfg: dict) -> str:
    """The feature cache key: the clips (``Clips.key``), the backbone config, the code (``features_code``)
    and, for WavLM, the weights the path or hub name resolves to (``lase.backbone.weights_identity``)."""
    name = backbone_cfg["name"]
    parts = [clips.key, backbone_cfg, features_code(name)]
    if name == "wavlm":
        from lase.backbone import weights_dir, weights_identity

        parts.append(weights_identity(weights_dir(backbone_cfg["path"])))
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def frozen_features(clips: Clips, backbone_cfg: dict, device: str = "cpu") -> tuple[np.ndarray, float]:
    """(N, d) float32 backbone features of every clip, cached; and the seconds spent computing them (0 if cached).

    ``{"name": "mfcc", ...FrontendConfig fields}``: the fixed MFCC-statistics frontend (cpu scale);
    ``{"name": "wavlm", "path": ..., "layers": [10, 12]}``: frozen WavLM, layers averaged (full scale).
    """
    spent = {"s": 0.0}
    cfg = dict(backbone_cfg)
    name = cfg.pop("name")

    def build() -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        if name == "mfcc":
            from xentlab.audio.features import FrontendConfig, mfcc_statistics_batch

            x = mfcc_statistics_batch(clips.waves, FrontendConfig(**cfg))
        elif name == "wavlm":
            from lase.backbone import WavLMLayerMean, weights_dir

            # loaded from the directory whose files the key hashed (a hub name's cached snapshot)
            wavlm = WavLMLayerMean(str(weights_dir(cfg["path"])), tuple(cfg.get("layers", (10, 12))), device)
            x = wavlm.embed(clips.waves)
        else:
            raise ValueError(f"unknown backbone {name!r}: use 'mfcc' or 'wavlm'")
        spent["s"] = time.perf_counter() - t0
        return {"x": x.astype(np.float32)}

    key = features_key(clips, backbone_cfg)
    x = cached_arrays(f"lase-features-{name}-{key}", build)["x"]
    if len(x) != len(clips.waves):
        raise RuntimeError("cached features do not match the clips; delete the cache entry")
    return x, round(spent["s"], 2)
