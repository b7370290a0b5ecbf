"""Device choice: CUDA when present, else Apple MPS, else CPU; never hard-coded."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` when given (``"cuda:1"``, ``"cpu"``...), else the best one available.

    Raises a ``ValueError`` that says what is available when CUDA is asked for and absent.
    """
    if device is not None and str(device) not in ("", "auto"):
        resolved = torch.device(device)
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} was requested but CUDA is not available here; "
                "use --device cpu (or leave it unset to pick automatically)"
            )
        return resolved
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
