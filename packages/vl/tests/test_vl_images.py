"""Images are streamed through an on-disk cache: the pixels read back equal the processor's,
bad files are named or skipped, and memory does not grow with the number of images."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from adapterlab.vl.data import DataError
from adapterlab.vl.images import encode_images
from PIL import Image
from transformers import BlipImageProcessor

PROCESSOR = BlipImageProcessor(size={"height": 8, "width": 8})


def test_cached_pixels_equal_the_processor_and_are_reused(tmp_path) -> None:
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (6, 4), (40 * i, 10, 200 - 30 * i)).save(paths[-1])
    got = encode_images(paths + paths[:2], PROCESSOR, cache_dir=tmp_path / "cache", batch=2)
    want = PROCESSOR(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")
    assert len(got.pixels) == 5
    for i, p in enumerate(paths):
        torch.testing.assert_close(got.pixels[p], want["pixel_values"][i], rtol=0, atol=0)
    import adapterlab.vl.images as images_module

    def no_reads(path):  # pragma: no cover - must not be called on a cache hit
        raise AssertionError(f"read {path}")

    with pytest.MonkeyPatch.context() as mp:  # the cache is reused: no image is read again
        mp.setattr(images_module, "load_image", no_reads)
        again = encode_images(paths + paths[:2], PROCESSOR, cache_dir=tmp_path / "cache", batch=2)
    torch.testing.assert_close(again.pixels[paths[3]], want["pixel_values"][3])
    Image.new("RGB", (6, 4), (0, 0, 0)).save(paths[3])  # a changed file is read again
    changed = encode_images(paths, PROCESSOR, cache_dir=tmp_path / "cache", batch=2)
    assert not torch.equal(changed.pixels[paths[3]], want["pixel_values"][3])
    (tmp_path / "0.png").unlink()
    with pytest.raises(DataError, match=r"0\.png: image not found"):
        encode_images(paths, PROCESSOR, cache_dir=tmp_path / "other")
    skipped = encode_images(paths, PROCESSOR, cache_dir=tmp_path / "other", skip_bad=True)
    assert paths[0] not in skipped.pixels and [p for p, _ in skipped.bad] == [paths[0]]


PEAK = """
import resource, sys
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from adapterlab.vl.images import encode_images

class Processor:  # a cheap stand-in for BlipImageProcessor: 32 x 32 float32 pixels
    def __call__(self, images, return_tensors):
        arr = np.stack([np.asarray(im.resize((32, 32)), dtype=np.float32) for im in images])
        return {"pixel_values": torch.from_numpy(arr).permute(0, 3, 1, 2)}

root = Path(sys.argv[1])
source = root / "source.png"
Image.new("RGB", (4, 4), (200, 30, 30)).save(source)
for n in (2_000, 20_000):  # the peak so far after each: 2,000 images, then 20,000 others
    paths = []
    for i in range(n):  # n distinct files (links to one tiny image): each is decoded
        paths.append(root / f"{n}-{i}.png")
        paths[-1].symlink_to(source)
    images = encode_images(paths, Processor(), cache_dir=root / "cache", batch=256)
    assert len(images.pixels) == n
    assert all(float(images.pixels[p][0, 0, 0]) == 200.0 for p in paths[:: max(1, n // 200)])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(tmp_path)], check=True, capture_output=True, text=True
    )
    small, large = (int(x) for x in out.stdout.split()[-2:])
    # held in memory, 20,000 32 x 32 float32 images would add 245 MB to the peak; streamed
    # through the cache file, it stays within 20 %
    assert large < 1.2 * small, (small, large)
