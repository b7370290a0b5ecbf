"""Defaults that both the configs and the models need (a leaf module: no torch, no open_clip)."""

from __future__ import annotations

__all__ = ["NO_WEIGHTS", "TINY", "resolve_pretrained"]

#: The narrow random CPU model (``models.clip.TINY_PRESET``).
TINY = "tiny"
#: Spellings of "no pretrained weights" (random initialisation).
NO_WEIGHTS = frozenset({"", "none", "null", "random"})


def resolve_pretrained(model_name: str, pretrained: str | None) -> str:
    """The weights used when ``--pretrained`` is not given: ``"none"`` (random) for the ``tiny``
    preset, ``"openai"`` (the paper's OpenAI CLIP) for any other model; every spelling of "no
    weights" becomes ``"none"``. The one place this default is decided: every subcommand's
    config, run-all and :func:`~adapterlab.pointclip.models.clip.load_clip` call it."""
    if pretrained is None:
        return "none" if model_name == TINY else "openai"
    tag = str(pretrained).strip()
    return "none" if tag.lower() in NO_WEIGHTS else tag
