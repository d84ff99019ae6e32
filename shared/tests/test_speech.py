"""The espeak-ng corpus: a handful of short utterances, synthesised offline from espeakng-loader's library."""

import json
import os
import unicodedata

import numpy as np
import pytest

from xentlab.data import speech
from xentlab.data.speech import (
    LANGUAGES,
    SCRIPTS,
    VOICE_VARIANTS,
    SpeechCorpusConfig,
    _load_dir,
    load_speech_corpus,
    make_plan,
    synthesize,
    verify_clips,
)

TINY = SpeechCorpusConfig(
    n_train_speakers=2, n_heldout_speakers=1, utterances_per_language=1, words_per_utterance=(2, 2)
)

SCRIPT_NAME = {"en": "LATIN", "hi": "DEVANAGARI", "ta": "TAMIL", "te": "TELUGU"}


def test_bundled_voices_and_variants_exist():
    _, data = speech._espeak_paths()
    for lang in ("hi", "ta", "te"):
        assert os.path.isfile(os.path.join(data, f"{lang}_dict")), f"no {lang} dictionary in espeakng-loader"
    for lang_file in ("lang/inc/hi", "lang/dra/ta", "lang/dra/te", "lang/gmw/en-US"):
        assert os.path.isfile(os.path.join(data, lang_file)), lang_file
    missing = [v for v in VOICE_VARIANTS if not os.path.isfile(os.path.join(data, "voices", "!v", v))]
    assert not missing, f"variants not in the bundled data: {missing}"


def test_plan_speakers_disjoint_and_texts_in_their_script():
    cfg = SpeechCorpusConfig(n_train_speakers=10, n_heldout_speakers=5, utterances_per_language=3)
    speakers, rows = make_plan(cfg)
    train = {s.variant for s in speakers if s.split == "train"}
    held = {s.variant for s in speakers if s.split == "heldout"}
    assert len(train) == 10 and len(held) == 5 and not train & held
    assert all(30 <= s.pitch <= 80 and 140 <= s.speed <= 175 for s in speakers)
    assert len(rows) == 15 * 4 * 3
    assert len({r["text"] for r in rows}) == len(rows), "texts repeat"
    for r in rows:
        letters = [c for c in r["text"] if not c.isspace()]
        assert all(SCRIPT_NAME[r["language"]] in unicodedata.name(c) for c in letters), r
        assert r["voice"].endswith("+" + speakers[r["speaker"]].variant)
    # the plan is a function of the config: same config, same plan; another seed, other speakers
    assert make_plan(cfg)[1] == rows
    assert make_plan(SpeechCorpusConfig(seed=1))[0] != make_plan(SpeechCorpusConfig(seed=0))[0]


def test_syllable_inventories_are_single_code_points():
    for lang, (consonants, vowels) in SCRIPTS.items():
        assert all(len(c) == 1 for c in consonants) and all(len(v) <= 1 for v in vowels), lang


def test_synthesis_speaks_every_language_and_pitch_moves_f0():
    items = [{"text": t, "voice": v, "pitch": 50, "speed": 160} for t, v in
             [("bako mira", "en-us+m3"), ("कमला पिता", "hi+m3"), ("கமலா படி", "ta+m3"), ("కమల పిత", "te+m3")]]  # fmt: skip
    items += [{"text": "aaaa", "voice": "en-us+m3", "pitch": p, "speed": 120} for p in (10, 90)]
    clips = synthesize(items, sample_rate=16_000)
    for c in clips[:4]:
        assert 0.3 * 16_000 < len(c) < 4 * 16_000
        assert np.abs(c.astype(float)).max() > 1000  # audible, not silence
    assert len({c.tobytes() for c in clips[:4]}) == 4

    def f0(x):  # autocorrelation peak between 60 and 400 Hz on the loud part
        x = x.astype(float)
        x = x[np.abs(x) > 0.2 * np.abs(x).max()][:4000]
        ac = np.correlate(x, x, "full")[len(x) - 1 :]
        lo, hi = 16_000 // 400, 16_000 // 60
        return 16_000 / (lo + np.argmax(ac[lo:hi]))

    assert f0(clips[5]) > 1.3 * f0(clips[4]), (f0(clips[4]), f0(clips[5]))


def test_generate_cache_manifest_and_checksums(tmp_path, monkeypatch):
    corpus = load_speech_corpus(TINY, directory=tmp_path / "a")
    assert len(corpus) == 3 * len(LANGUAGES)
    assert set(corpus.splits[corpus.speaker_ids == 2]) == {"heldout"}
    assert corpus.indices("train").tolist() == list(range(8))
    manifest = json.loads(corpus.manifest_path.read_text())
    assert manifest["espeak_ng"].startswith("1.52")
    assert manifest["n_clips"] == len(corpus) and len(manifest["speakers"]) == 3
    assert manifest["generation_seconds"] > 0
    verify_clips(corpus)
    w = corpus.waveform(0)
    assert w.dtype == np.float32 and -1.0 <= w.min() < w.max() < 1.0

    # a second load reads the cache and synthesises nothing
    monkeypatch.setattr(speech, "generate", lambda *a, **k: pytest.fail("regenerated a valid cache"))
    again = load_speech_corpus(TINY, directory=tmp_path / "a")
    assert np.array_equal(again.audio, corpus.audio)
    monkeypatch.undo()

    # bit-identical when generated again elsewhere with another number of workers
    other = load_speech_corpus(
        SpeechCorpusConfig(**{**TINY.__dict__, "workers": 1}), directory=tmp_path / "b"
    )
    assert np.array_equal(other.audio, corpus.audio)

    # a corrupted audio file fails its checksum and is not trusted
    audio = tmp_path / "a" / "audio.npz"
    data = bytearray(audio.read_bytes())
    data[len(data) // 2] ^= 0xFF
    audio.write_bytes(bytes(data))
    assert _load_dir(TINY, tmp_path / "a") is None
    # ... and a manifest for another config is not used for this one
    assert _load_dir(SpeechCorpusConfig(seed=5), tmp_path / "b") is None


def test_bad_configs():
    with pytest.raises(ValueError, match="languages"):
        SpeechCorpusConfig(languages=("fr",))
    with pytest.raises(ValueError, match="voice variants"):
        SpeechCorpusConfig(n_train_speakers=len(VOICE_VARIANTS), n_heldout_speakers=1)
    with pytest.raises(ValueError, match="pitch_range"):
        SpeechCorpusConfig(pitch_range=(10, 120))
    empty = speech.SpeechCorpus(TINY, [], [], np.zeros(0, np.int16), np.zeros(1, np.int64), None, 0.0)
    with pytest.raises(ValueError, match="split"):
        empty.indices("test")
