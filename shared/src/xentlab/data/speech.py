"""An offline multi-script speech corpus: English, Hindi, Tamil and Telugu synthesised with espeak-ng.

Why: speaker-representation papers (LASE first) need speech from the same "speaker" in several
languages and scripts, and tests and CI have no network and no corpus. espeak-ng is a formant
synthesiser with voices for ``en``, ``hi``, ``ta`` and ``te``; PyPI's ``espeakng-loader`` bundles
``libespeak-ng`` 1.52 and all its voice data, so the corpus needs nothing outside PyPI. We call the
library through ctypes (synchronous mode, a synthesis callback that collects the int16 samples).

What a clip is:

* a **speaker** is an espeak-ng voice *variant* (``m3``, ``f2``, ``klatt4``, ``Annie``, ...) with its
  own base pitch (espeak's 0..99 pitch parameter) and speed (words per minute). Every speaker has a
  different variant, so speakers differ in formants, glottal source and prosody, not just in pitch;
* the **text** is procedural pseudo-words in each language's own script: consonant + vowel-sign
  syllables from the Devanagari, Tamil and Telugu Unicode blocks, and consonant-vowel syllables in
  Latin letters for English. No corpus is shipped and no two clips share a text;
* training and held-out speakers are disjoint (they do not even share a variant).

The corpus is synthesised once and cached under ``cache_dir("speech", ...)`` as ``audio.npz`` (every
clip's int16 samples at ``sample_rate``, concatenated, with offsets) and ``manifest.json`` (the
config, the speakers, one row per clip with its text and sha256, the sha256 of ``audio.npz``, the
espeak-ng version, the generation time). A cache whose checksum does not match is regenerated.

Determinism: espeak-ng keeps synthesiser state (e.g. the phase of its pitch flutter) across
utterances in one process, so the samples of a clip depend on what the process synthesised before
it; re-initialising the library does not reset it. Each speaker is therefore synthesised in a fresh
subprocess (which imports only numpy and this file), with a fixed random seed, in a fixed order: the
corpus is bit-identical however many workers run and whatever the calling process did before.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

GENERATOR_VERSION = "1"
# Hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule"). Computed
# inline (= xentlab.data.cache.source_digest) because the synthesis workers import only numpy and this file.
SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:16]
LANGUAGES = ("en", "hi", "ta", "te")
# espeak-ng voice names per language (checked present in espeakng-loader 0.2.4's data)
ESPEAK_LANGUAGE = {"en": "en-us", "hi": "hi", "ta": "ta", "te": "te"}
ESPEAK_SAMPLE_RATE = 22_050

# Variants that sound like a (synthetic) talker: without a forced language (Storm), without heavy
# echo or robot effects (robosoft*, RicishayMax*, UniRobot, Demonic, anikaRobot, announcer), with a
# voiced source (not whisper*, caleb), and without a space in the name ("Mr serious").
VOICE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "croak", "Andy", "Annie", "AnxiousAndy", "Alex", "Alicia", "Andrea", "Denis", "Diogo", "Gene",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed",
    "Tweaky", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "david", "ed",
    "edward", "grandma", "grandpa", "gustave", "ian", "john", "kaukovalta", "linda", "marcelo", "max",
    "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro",
    "shelby", "steph", "travis", "victor", "zac",
)  # fmt: skip

# Syllable inventories. Consonants and dependent vowel signs are the common ones of each script
# (Devanagari U+0915-0939 / U+093E-094C, Tamil U+0B95-0BB9 / U+0BBE-0BCC, Telugu U+0C15-0C39 /
# U+0C3E-0C4C); "" is the inherent vowel.
SCRIPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        tuple("bdfgklmnprstvz"),
        ("a", "e", "i", "o", "u"),
    ),
    "hi": (
        tuple("कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह"),
        ("", "\u093e", "\u093f", "\u0940", "\u0941", "\u0942", "\u0947", "\u0948", "\u094b", "\u094c"),
    ),
    "ta": (
        tuple("கஙசஞடணதநபமயரலவழளறன"),
        (
            "",
            "\u0bbe",
            "\u0bbf",
            "\u0bc0",
            "\u0bc1",
            "\u0bc2",
            "\u0bc6",
            "\u0bc7",
            "\u0bc8",
            "\u0bca",
            "\u0bcb",
        ),
    ),
    "te": (
        tuple("కఖగఘచఛజఝటఠడఢణతథదధనపఫబభమయరలవశషసహ"),
        (
            "",
            "\u0c3e",
            "\u0c3f",
            "\u0c40",
            "\u0c41",
            "\u0c42",
            "\u0c46",
            "\u0c47",
            "\u0c48",
            "\u0c4a",
            "\u0c4b",
        ),
    ),
}


@dataclass(frozen=True)
class SpeechCorpusConfig:
    """What to synthesise. Every field but ``workers`` is part of the cache key.

    n_train_speakers / n_heldout_speakers: disjoint speaker sets (each a distinct voice variant).
    utterances_per_language: clips per (speaker, language).
    languages: a subset of ``LANGUAGES``.
    words_per_utterance / syllables_per_word: inclusive ranges of the procedural text.
    pitch_range: espeak-ng pitch parameter (0..99, 50 = the variant's default), per speaker.
    speed_range: words per minute, per speaker.
    sample_rate: clips are resampled from espeak's 22,050 Hz to this rate (16 kHz suits WavLM).
    seed: the corpus seed (speakers, texts); independent of the experiment seeds.
    workers: subprocesses synthesising at once (does not change the corpus).
    """

    n_train_speakers: int = 16
    n_heldout_speakers: int = 8
    utterances_per_language: int = 12
    languages: tuple[str, ...] = LANGUAGES
    words_per_utterance: tuple[int, int] = (3, 4)
    syllables_per_word: tuple[int, int] = (2, 3)
    pitch_range: tuple[int, int] = (30, 80)
    speed_range: tuple[int, int] = (140, 175)
    sample_rate: int = 16_000
    seed: int = 0
    workers: int = field(default=2, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.languages) - set(LANGUAGES)
        if unknown or not self.languages:
            raise ValueError(f"languages must be a non-empty subset of {LANGUAGES}, got {self.languages}")
        n = self.n_train_speakers + self.n_heldout_speakers
        if self.n_train_speakers < 1 or self.n_heldout_speakers < 0:
            raise ValueError("need at least one training speaker and a non-negative held-out count")
        if n > len(VOICE_VARIANTS):
            raise ValueError(f"{n} speakers asked for, but only {len(VOICE_VARIANTS)} voice variants exist")
        if self.utterances_per_language < 1:
            raise ValueError("utterances_per_language must be >= 1")
        for name in ("words_per_utterance", "syllables_per_word", "pitch_range", "speed_range"):
            lo, hi = getattr(self, name)
            if not (0 < lo <= hi):
                raise ValueError(f"{name} must be an increasing range of positive integers, got {(lo, hi)}")
        if not (0 <= self.pitch_range[0] and self.pitch_range[1] <= 99):
            raise ValueError(f"pitch_range must lie in 0..99, got {self.pitch_range}")
        if self.sample_rate < 8_000:
            raise ValueError(f"sample_rate {self.sample_rate} is too low for speech")

    def key(self) -> str:
        """A short hash of everything that determines the corpus (the espeak-ng build and this module's code too)."""
        d = asdict(self)
        d.pop("workers")
        d["generator"] = GENERATOR_VERSION
        d["espeakng_loader"] = _loader_version()
        d["code"] = code_version()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Speaker:
    id: int
    variant: str
    pitch: int
    speed: int
    split: str  # "train" | "heldout"

    @property
    def name(self) -> str:
        return f"{self.variant}-p{self.pitch}-s{self.speed}"


@dataclass
class SpeechCorpus:
    """The clips (int16 at ``sample_rate``) and one metadata row per clip."""

    config: SpeechCorpusConfig
    speakers: list[Speaker]
    rows: list[dict]  # id, speaker, language, split, text, voice, pitch, speed, n_samples, sha256
    audio: np.ndarray  # all clips' int16 samples, concatenated
    offsets: np.ndarray  # (n_clips + 1,) int64
    manifest_path: Path
    generation_seconds: float

    def __len__(self) -> int:
        return len(self.rows)

    def waveform(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 in [-1, 1)."""
        return self.audio[self.offsets[i] : self.offsets[i + 1]].astype(np.float32) / 32768.0

    def waveforms(self, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        idx = range(len(self)) if indices is None else indices
        return [self.waveform(int(i)) for i in idx]

    @property
    def speaker_ids(self) -> np.ndarray:
        return np.array([r["speaker"] for r in self.rows], dtype=np.int64)

    @property
    def language_ids(self) -> np.ndarray:
        """Index of each clip's language in ``config.languages``."""
        lookup = {lang: k for k, lang in enumerate(self.config.languages)}
        return np.array([lookup[r["language"]] for r in self.rows], dtype=np.int64)

    @property
    def splits(self) -> np.ndarray:
        return np.array([r["split"] for r in self.rows])

    def indices(self, split: str) -> np.ndarray:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        return np.flatnonzero(self.splits == split)


# --------------------------------------------------------------------------------------------
# the plan: speakers and texts, from the config alone
# --------------------------------------------------------------------------------------------


def make_speakers(config: SpeechCorpusConfig) -> list[Speaker]:
    """Draw distinct variants (a permutation of ``VOICE_VARIANTS``), then a pitch and speed each."""
    rng = np.random.default_rng([config.seed, 0x5EED])
    order = rng.permutation(len(VOICE_VARIANTS))
    n = config.n_train_speakers + config.n_heldout_speakers
    speakers = []
    for k in range(n):
        speakers.append(
            Speaker(
                id=k,
                variant=VOICE_VARIANTS[order[k]],
                pitch=int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1)),
                speed=int(rng.integers(config.speed_range[0], config.speed_range[1] + 1)),
                split="train" if k < config.n_train_speakers else "heldout",
            )
        )
    return speakers


def pseudo_text(
    language: str, rng: np.random.Generator, words: tuple[int, int], syllables: tuple[int, int]
) -> str:
    """Procedural pseudo-words in ``language``'s script: (consonant + vowel sign) syllables."""
    consonants, vowels = SCRIPTS[language]
    out = []
    for _ in range(int(rng.integers(words[0], words[1] + 1))):
        n_syl = int(rng.integers(syllables[0], syllables[1] + 1))
        out.append(
            "".join(
                consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
                for _ in range(n_syl)
            )
        )
    return " ".join(out)


def make_plan(config: SpeechCorpusConfig) -> tuple[list[Speaker], list[dict]]:
    """Every clip's metadata (speaker, language, text, voice) in the canonical order."""
    speakers = make_speakers(config)
    rows = []
    for spk in speakers:
        for lang in config.languages:
            # a text stream per (corpus seed, speaker, language): adding speakers never changes the others
            rng = np.random.default_rng([config.seed, spk.id, zlib.crc32(lang.encode())])
            for u in range(config.utterances_per_language):
                rows.append(
                    {
                        "id": len(rows),
                        "speaker": spk.id,
                        "language": lang,
                        "split": spk.split,
                        "utterance": u,
                        "text": pseudo_text(lang, rng, config.words_per_utterance, config.syllables_per_word),
                        "voice": f"{ESPEAK_LANGUAGE[lang]}+{spk.variant}",
                        "pitch": spk.pitch,
                        "speed": spk.speed,
                    }
                )
    return speakers, rows


# --------------------------------------------------------------------------------------------
# espeak-ng through ctypes (runs inside the worker subprocess)
# --------------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3
_POS_CHARACTER, _ESPEAK_CHARS_UTF8 = 1, 1


def code_version() -> str:
    """The generator-code part of the cache key: this module (planning, synthesis, resampling) and numpy."""
    from xentlab.data.cache import code_key

    return code_key(SOURCE_DIGEST, libraries=("numpy",))


def _loader_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("espeakng-loader")
    except PackageNotFoundError:
        return "missing"


def _espeak_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - the workspace installs it
        raise ImportError(
            "xentlab.data.speech needs the PyPI package 'espeakng-loader' (it bundles libespeak-ng and its "
            "voices); in this workspace `uv sync --all-packages` installs it"
        ) from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Espeak:
    """The few libespeak-ng calls we need: initialise, pick a voice, set rate/pitch, synthesise."""

    def __init__(self, lib_path: str, data_path: str, rand_seed: int = 0) -> None:
        import ctypes

        self._ct = ctypes
        self.lib = lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
        lib.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}) with data at {data_path}")
        self.sample_rate = rate
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # keep a reference: the library holds a raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(rand_seed)

    def _collect(self, wav, n, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_ESPEAK_RATE, int(speed), 0)
        self.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with code {err} on {text!r} ({voice})")
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _worker_main() -> None:
    """Subprocess entry: a JSON job on stdin -> an .npz of int16 clips at espeak's rate."""
    job = json.loads(sys.stdin.read())
    engine = _Espeak(job["lib_path"], job["data_path"], job["rand_seed"])
    clips = [engine.synth(it["text"], it["voice"], it["pitch"], it["speed"]) for it in job["items"]]
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    audio = np.concatenate(clips) if clips else np.zeros(0, np.int16)
    np.savez(
        job["out"],
        audio=audio.astype(np.int16),
        lengths=lengths,
        sample_rate=np.int64(engine.sample_rate),
        version=np.array(engine.version),
    )


# The worker loads this file by path: `python -m xentlab.data.speech` would import xentlab.data,
# whose other modules import torch (~10 s per process on our CI machine).
_WORKER_BOOT = (
    "import importlib.util as u, sys; s = u.spec_from_file_location('_xentlab_speech_worker', sys.argv[1]); "
    "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); m._worker_main()"
)


def _run_workers(jobs: list[dict], workers: int) -> list[dict]:
    """Run each job in its own fresh subprocess, at most ``workers`` at once; return their outputs."""
    lib_path, data_path = _espeak_paths()
    results: list[dict | None] = [None] * len(jobs)
    with tempfile.TemporaryDirectory(prefix="xentlab-speech-") as tmp:
        pending = list(enumerate(jobs))
        running: list[tuple[int, subprocess.Popen, Path]] = []
        env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
        env["OMP_NUM_THREADS"] = "1"
        while pending or running:
            while pending and len(running) < max(1, workers):
                k, job = pending.pop(0)
                out = Path(tmp) / f"job{k}.npz"
                payload = dict(job, lib_path=lib_path, data_path=data_path, out=str(out))
                proc = subprocess.Popen(
                    [sys.executable, "-c", _WORKER_BOOT, str(Path(__file__).resolve())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                )
                proc.stdin.write(json.dumps(payload).encode())
                proc.stdin.close()
                running.append((k, proc, out))
            k, proc, out = running.pop(0)
            stderr = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0:
                for _, other, _ in running:
                    other.kill()
                raise RuntimeError(f"espeak-ng worker failed (exit {proc.returncode}):\n{stderr[-2000:]}")
            with np.load(out, allow_pickle=False) as z:
                results[k] = {name: z[name] for name in z.files}
    return results  # type: ignore[return-value]


def synthesize(
    items: Sequence[dict], *, sample_rate: int | None = None, rand_seed: int = 0
) -> list[np.ndarray]:
    """Synthesise ``items`` (dicts with text, voice, pitch, speed) in one fresh subprocess.

    Returns int16 clips at espeak's own 22,050 Hz, or resampled to ``sample_rate``.
    """
    out = _run_workers([{"items": list(items), "rand_seed": rand_seed}], workers=1)[0]
    clips = np.split(out["audio"], np.cumsum(out["lengths"])[:-1]) if len(out["lengths"]) else []
    sr = int(out["sample_rate"])
    return [c if sample_rate is None else resample_int16(c, sr, sample_rate) for c in clips]


def resample_int16(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser-windowed FIR) back to int16."""
    if rate_in == rate_out:
        return x.astype(np.int16)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    y = resample_poly(x.astype(np.float64), rate_out // g, rate_in // g)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------------------------
# generation and the cache
# --------------------------------------------------------------------------------------------


def corpus_dir(config: SpeechCorpusConfig) -> Path:
    from xentlab.data.cache import cache_dir

    return cache_dir("speech", f"espeak-{config.key()}")


def generate(config: SpeechCorpusConfig, out_dir: Path) -> Path:
    """Synthesise the corpus into ``out_dir`` (audio.npz, then manifest.json); returns the manifest."""
    from xentlab.data.cache import atomic_write_bytes, atomic_write_json, sha256_file

    t0 = time.perf_counter()
    speakers, rows = make_plan(config)
    jobs = []
    for spk in speakers:
        items = [r for r in rows if r["speaker"] == spk.id]
        jobs.append({"items": items, "rand_seed": config.seed * 1000 + spk.id})
    outputs = _run_workers(jobs, config.workers)

    clips: list[np.ndarray] = []
    version = ""
    for spk, out in zip(speakers, outputs):
        raw = np.split(out["audio"], np.cumsum(out["lengths"])[:-1]) if len(out["lengths"]) else []
        items = [r for r in rows if r["speaker"] == spk.id]
        if len(raw) != len(items):
            raise RuntimeError(
                f"worker for speaker {spk.id} returned {len(raw)} clips, expected {len(items)}"
            )
        for r, c in zip(items, raw):
            if len(c) == 0:
                raise RuntimeError(
                    f"espeak-ng produced no audio for clip {r['id']} ({r['voice']}: {r['text']!r})"
                )
            clip = resample_int16(c, int(out["sample_rate"]), config.sample_rate)
            r["n_samples"] = int(len(clip))
            r["sha256"] = hashlib.sha256(clip.tobytes()).hexdigest()
            clips.append(clip)
        version = str(out["version"])
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    buf = io.BytesIO()
    np.savez(buf, audio=np.concatenate(clips), offsets=offsets)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "audio.npz", buf.getvalue())
    manifest = {
        "generator": f"xentlab.data.speech v{GENERATOR_VERSION}",
        "espeak_ng": version,
        "espeakng_loader": _loader_version(),
        "config": asdict(config),
        "key": config.key(),
        "audio_file": "audio.npz",
        "audio_sha256": sha256_file(out_dir / "audio.npz"),
        "n_clips": len(rows),
        "total_seconds_of_audio": round(float(lengths.sum()) / config.sample_rate, 2),
        "generation_seconds": round(time.perf_counter() - t0, 2),
        "speakers": [asdict(s) for s in speakers],
        "clips": rows,
    }
    return atomic_write_json(out_dir / "manifest.json", manifest)  # written last: marks the cache complete


def _load_dir(config: SpeechCorpusConfig, directory: Path) -> SpeechCorpus | None:
    """The corpus in ``directory`` if its manifest matches ``config`` and every checksum holds."""
    from xentlab.data.cache import sha256_file

    manifest_path = directory / "manifest.json"
    audio_path = directory / "audio.npz"
    if not (manifest_path.exists() and audio_path.exists()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return None
    if manifest.get("key") != config.key() or manifest.get("audio_sha256") != sha256_file(audio_path):
        return None
    with np.load(audio_path, allow_pickle=False) as z:
        audio, offsets = z["audio"], z["offsets"]
    rows = manifest["clips"]
    if len(offsets) != len(rows) + 1:
        return None
    return SpeechCorpus(
        config=config,
        speakers=[Speaker(**s) for s in manifest["speakers"]],
        rows=rows,
        audio=audio,
        offsets=offsets,
        manifest_path=manifest_path,
        generation_seconds=float(manifest["generation_seconds"]),
    )


def verify_clips(corpus: SpeechCorpus) -> None:
    """Check every clip against its sha256 in the manifest (load_speech_corpus checks the whole file)."""
    for i, r in enumerate(corpus.rows):
        clip = corpus.audio[corpus.offsets[i] : corpus.offsets[i + 1]]
        if hashlib.sha256(clip.tobytes()).hexdigest() != r["sha256"]:
            raise ValueError(f"clip {i} does not match its checksum in {corpus.manifest_path}")


def load_speech_corpus(
    config: SpeechCorpusConfig | None = None, *, directory: Path | None = None
) -> SpeechCorpus:
    """The corpus for ``config``: from the cache when it is there and intact, else synthesised now.

    ``directory`` overrides the cache location (tests use a temporary one).
    """
    config = config or SpeechCorpusConfig()
    directory = Path(directory) if directory is not None else corpus_dir(config)
    corpus = _load_dir(config, directory)
    if corpus is None:
        generate(config, directory)
        corpus = _load_dir(config, directory)
        if corpus is None:  # pragma: no cover - would mean the write itself is broken
            raise RuntimeError(f"speech corpus in {directory} failed its checksum right after generation")
    return corpus
