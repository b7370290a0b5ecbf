"""Loading weight files safely: safetensors only, pickles refused with a one-line message.

A pickled checkpoint (``torch.save``: ``.pt``, ``.pth``, ``.bin``, ``.ckpt``) can run arbitrary
code when it is loaded, so adapterlab never unpickles one. :func:`load_weights` reads a
safetensors file and refuses a pickle with a :class:`PickleRefusedError` that names the file and
says how to convert it; :func:`refuse_pickle` does the check alone, for callers that load the
file another way (``open_clip``, ``transformers``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import PickleRefusedError

__all__ = ["is_pickle_file", "load_weights", "refuse_pickle"]

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
_PICKLE_PROTO = b"\x80"  # pickle protocol >= 2 opcode (torch's legacy format starts with one)


def is_pickle_file(path: str | Path) -> bool:
    """True when ``path`` holds a pickle or a ``torch.save`` archive (by content, not by name)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(_ZIP_MAGIC):
        return True
    return len(head) >= 2 and head[:1] == _PICKLE_PROTO and 2 <= head[1] <= 5


def refuse_pickle(path: str | Path) -> None:
    """Raise :class:`PickleRefusedError` (one line, naming ``path``) when file ``path`` is a
    pickle or ``torch.save`` archive, judged by its first bytes (a missing file passes)."""
    path = Path(path)
    if path.is_file() and is_pickle_file(path):
        raise PickleRefusedError(
            f"{path} is a pickled checkpoint: pickles are not loaded (they can run code); "
            "convert it once, where you trust it, to safetensors with "
            '`python -c "import torch, safetensors.torch as st; '
            f"st.save_file(torch.load('{path}', weights_only=True), '{path.with_suffix('.safetensors')}')\"` "
            "and pass the .safetensors file"
        )


def load_weights(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors of safetensors file ``path`` on ``device``.

    Raises :class:`PickleRefusedError` for a pickle, ``FileNotFoundError`` for a missing file and
    ``ValueError`` (naming the file) for a truncated or malformed one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    refuse_pickle(path)
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {err}"
        ) from err
