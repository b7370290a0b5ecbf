"""Device choice: CUDA when present, else Apple MPS, else CPU; never hard-coded."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` when given (``"cuda:1"``, ``"cpu"``...), else the best one available.

    Raises a ``ValueError`` that says what is available when CUDA is asked for and absent, or
    when ``device`` is not a device name at all.
    """
    if device is not None and str(device) not in ("", "auto"):
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"unknown device {str(device)!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            ) from err
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} was requested but CUDA is not available here; "
                "use --device cpu (or leave it unset to pick automatically)"
            )
        if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist here"
            )
        if resolved.type == "mps" and not _mps_available():
            raise ValueError(f"device {str(device)!r} was requested but MPS is not available")
        return resolved
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
