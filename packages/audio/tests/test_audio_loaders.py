"""Loaders on tiny files in the real layouts, few-shot caps, SpecAugment, the synthesiser, Arrow caching."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch
from adapterlab.audio.features import FbankConfig
from adapterlab.audio.loaders import (
    SYNTH_CLASSES,
    AudioClipDataset,
    AudioItem,
    cached_features,
    class_counts,
    compute_features,
    esc50_folds,
    few_shot,
    load_dataset,
    load_esc50,
    load_fluent_speech,
    load_speech_commands,
    load_urbansound8k,
)
from adapterlab.audio.specaug import SpecAugment


def _wav(path, seconds=0.05, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(sr * seconds), np.float32), sr)


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_esc50_layout_and_fold_rotation(tmp_path):
    root = tmp_path / "ESC-50-master"
    rows = []
    for target, cat in enumerate(["dog", "rooster", "rain"]):
        for fold in range(1, 6):
            name = f"{fold}-{target}00-A-{target}.wav"
            _wav(root / "audio" / name)
            rows.append([name, fold, target, cat, "False", "x", "A"])
    _write_csv(
        root / "meta" / "esc50.csv",
        ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
        rows,
    )
    assert esc50_folds(5) == ([1, 2, 3], 4, 5)  # PETL-AST's first rotation
    assert esc50_folds(1) == ([2, 3, 4], 5, 1)
    sp = load_esc50(tmp_path, test_fold=1)  # parent folder is accepted
    assert sp.classes == ["dog", "rooster", "rain"]
    assert (len(sp.train), len(sp.val), len(sp.test)) == (9, 3, 3)
    assert {p.path.name[0] for p in sp.test} == {"1"} and {p.path.name[0] for p in sp.val} == {"5"}
    assert {p.path.name[0] for p in sp.train} == {"2", "3", "4"}
    assert sp.defaults["spec_augment"] and sp.defaults["target_frames"] == 500
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv"):
        load_esc50(tmp_path / "nowhere")


def test_urbansound8k_layout(tmp_path):
    root = tmp_path / "UrbanSound8K"
    rows = []
    for fold in range(1, 11):
        for cid, cname in enumerate(["air_conditioner", "car_horn"]):
            name = f"{fold}{cid}-0-0-0.wav"
            _wav(root / "audio" / f"fold{fold}" / name)
            rows.append([name, 1, 0.0, 1.0, 1, fold, cid, cname])
    _write_csv(
        root / "metadata" / "UrbanSound8K.csv",
        ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
        rows,
    )
    sp = load_urbansound8k(tmp_path, test_fold=3)
    assert sp.classes == ["air_conditioner", "car_horn"]
    assert (len(sp.train), len(sp.val), len(sp.test)) == (16, 2, 2)
    assert all(it.path.parent.name == "fold3" for it in sp.test)
    assert all(it.path.parent.name == "fold2" for it in sp.val)  # validation != test (no leak)
    assert all(it.path.exists() for it in sp.train)


def test_speech_commands_official_lists(tmp_path):
    root = tmp_path / "speech_commands_v0.02"
    for word in ["yes", "no", "up"]:
        for i in range(4):
            _wav(root / word / f"spk{i}_nohash_0.wav")
    _wav(root / "_background_noise_" / "noise.wav")
    (root / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("up/spk1_nohash_0.wav\nyes/spk1_nohash_0.wav\n")
    sp = load_speech_commands(tmp_path)
    assert sp.classes == ["no", "up", "yes"]
    assert (len(sp.train), len(sp.val), len(sp.test)) == (8, 2, 2)
    test_names = {(sp.classes[it.label], it.path.name) for it in sp.test}
    assert test_names == {("up", "spk1_nohash_0.wav"), ("yes", "spk1_nohash_0.wav")}
    assert not sp.defaults["spec_augment"] and sp.defaults["kernel_size"] == 31


def test_fluent_speech_csvs(tmp_path):
    root = tmp_path / "fluent_speech_commands_dataset"
    header = ["", "path", "speakerId", "transcription", "action", "object", "location"]
    intents = [
        ("activate", "lights", "kitchen"),
        ("bring", "shoes", "none"),
        ("increase", "volume", "none"),
    ]
    for split, n in (("train", 2), ("valid", 1), ("test", 1)):
        rows = []
        for k, (a, o, loc) in enumerate(intents):
            for i in range(n):
                rel = f"wavs/speakers/s{i}/{split}{k}{i}.wav"
                _wav(root / rel)
                rows.append([len(rows), rel, f"s{i}", "words", a, o, loc])
        _write_csv(root / "data" / f"{split}_data.csv", header, rows)
    sp = load_fluent_speech(tmp_path)
    assert sp.num_classes == 3 and (len(sp.train), len(sp.val), len(sp.test)) == (6, 3, 3)
    assert sp.classes[sp.test[0].label] == "activate|lights|kitchen"
    assert load_dataset("fluent_speech", tmp_path).num_classes == 3
    with pytest.raises(ValueError, match="official splits"):
        load_dataset("fluent_speech", tmp_path, fold=2)


def test_few_shot_really_caps_each_class():
    items = [AudioItem(f"c{c}_{i}.wav", c) for c in range(5) for i in range(3 + 4 * c)]
    for k in (1, 2, 4, 8):
        sub = few_shot(items, k, seed=3)
        counts = class_counts(sub)
        assert counts == {c: min(k, 3 + 4 * c) for c in range(5)}, counts
        assert all(s in items for s in sub) and len(set(sub)) == len(sub)
    assert few_shot(items, 2, seed=3) == few_shot(items, 2, seed=3)  # seeded
    assert few_shot(items, 2, seed=3) != few_shot(items, 2, seed=4)
    with pytest.raises(TypeError, match="int"):
        few_shot(
            items, "8", seed=0
        )  # the original compared a CLI string with an int: no cap at all
    with pytest.raises(ValueError):
        few_shot(items, 0)


def test_specaugment_masks_one_band_and_one_span():
    torch.manual_seed(0)
    aug = SpecAugment(freq_mask=24, time_mask=80)
    x = torch.randn(8, 200, 128) + 5.0  # never 0 by chance
    y = aug(x)
    saw_freq = saw_time = False
    for i in range(8):
        zero = y[i] == 0
        cols = zero.all(dim=0).nonzero().flatten()  # masked mel bins: zero at every frame
        rows = zero.all(dim=1).nonzero().flatten()  # masked frames: zero at every bin
        for idx, limit in ((cols, 24), (rows, 80)):
            if len(idx):
                assert len(idx) < limit and idx.max() - idx.min() + 1 == len(
                    idx
                )  # one contiguous band
        saw_freq |= len(cols) > 0
        saw_time |= len(rows) > 0
        keep = ~zero
        assert torch.equal(y[i][keep], x[i][keep])  # everything else untouched
        assert zero.sum() == len(cols) * 200 + len(rows) * 128 - len(cols) * len(rows)
    assert saw_freq and saw_time
    assert aug(x[0]).shape == (200, 128)


def test_synthesiser_writes_esc50_format(synth_root):
    rows = list(csv.DictReader((synth_root / "meta" / "esc50.csv").open()))
    assert len({r["category"] for r in rows}) == len(SYNTH_CLASSES) >= 10
    assert Counter(r["fold"] for r in rows) == {str(f): len(SYNTH_CLASSES) for f in range(1, 6)}
    info = sf.info(synth_root / "audio" / rows[0]["filename"])
    assert info.samplerate == 44100 and info.channels == 1 and info.format == "WAV"
    sp = load_esc50(synth_root, test_fold=5)
    assert sp.num_classes == len(SYNTH_CLASSES) and len(sp.test) == len(SYNTH_CLASSES)


def test_arrow_cache_matches_and_is_reused(synth_root, tmp_path, monkeypatch):
    sp = load_esc50(synth_root)
    cfg = FbankConfig(target_frames=64)
    ram = compute_features(sp.val, cfg, batch_size=5, progress=False)
    arrow = cached_features(sp.val, cfg, tmp_path / "cache", batch_size=5, progress=False)
    assert [it.path for it in arrow.items] == [it.path for it in ram.items]
    for i in (0, len(ram.items) - 1):
        torch.testing.assert_close(arrow.features[i], ram.features[i])
    import adapterlab.audio.loaders.cache as cache_mod

    monkeypatch.setattr(cache_mod, "fbank", lambda *a, **k: pytest.fail("recomputed"))
    again = cached_features(sp.val, cfg, tmp_path / "cache", progress=False)
    torch.testing.assert_close(again.features[3], ram.features[3])
    ds = AudioClipDataset(again.items, cfg, features=again.features)
    assert ds[3]["input_values"].shape == (64, 128) and int(ds[3]["labels"]) == again.items[3].label
