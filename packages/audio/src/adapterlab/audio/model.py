"""AST backbone loading with positional-embedding adaptation, a tiny test config, and the PETL-AST classifier.

Positional embeddings. ``ASTModel.from_pretrained(ckpt, max_length=L, ignore_mismatched_sizes=True)`` (what
PETL-AST does) re-initialises the mismatched ``position_embeddings`` - to **zeros** in transformers 4.28 and 5.x -
so every PETL-AST run with ``L != 1024`` had no positional information at all. Here the checkpoint is loaded at
its own length and its 2-D patch grid of embeddings is adapted as the original AST repo does
(``ast:src/models/ast_models.py``): centre-crop along time (frequency) when the new grid is shorter,
bilinear interpolation when it is longer; the CLS and distillation tokens' embeddings are kept as they are.

The classifier follows PETL-AST (``final_output: 'ALL'``): a linear head on the mean of *all* output tokens
after the final LayerNorm.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import ASTConfig, ASTModel
from transformers.utils import logging as hf_logging

DEFAULT_CHECKPOINT = "MIT/ast-finetuned-audioset-10-10-0.4593"
TINY = "tiny"


class ModelLoadError(RuntimeError):
    """The AST checkpoint could not be loaded (offline, wrong id or path, not an AST)."""


def grid_shape(config: ASTConfig, max_length: int | None = None) -> tuple[int, int]:
    """``(frequency, time)`` patches of the AST patch grid for ``max_length`` frames."""
    t = config.max_length if max_length is None else max_length
    f_dim = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    t_dim = (t - config.patch_size) // config.time_stride + 1
    if f_dim < 1 or t_dim < 1:
        raise ValueError(
            f"{t} frames x {config.num_mel_bins} mel bins is smaller than one {config.patch_size}x"
            f"{config.patch_size} patch"
        )
    return f_dim, t_dim


def _fit_axis(grid: torch.Tensor, size: int, axis: int) -> torch.Tensor:
    """Centre-crop (shorter) or bilinearly interpolate (longer) ``grid`` [1, D, F, T] along ``axis`` (2 or 3)."""
    old = grid.shape[axis]
    if size == old:
        return grid
    if size < old:
        start = old // 2 - size // 2
        return grid.narrow(axis, start, size)
    target = list(grid.shape[2:])
    target[axis - 2] = size
    return nn.functional.interpolate(grid, size=tuple(target), mode="bilinear", align_corners=False)


def adapt_position_embeddings(
    pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int], num_special: int = 2
) -> torch.Tensor:
    """Adapt ``[1, num_special + F*T, D]`` AST position embeddings from ``old_grid`` to ``new_grid`` (F, T).

    Time first, then frequency, as in the AST repo. The first ``num_special`` rows (CLS, distillation) are kept.
    """
    f0, t0 = old_grid
    if pos.dim() != 3 or pos.shape[1] != num_special + f0 * t0:
        raise ValueError(
            f"position embeddings of shape {tuple(pos.shape)} do not match a {f0}x{t0} grid "
            f"plus {num_special} special tokens"
        )
    special, patches = pos[:, :num_special], pos[:, num_special:]
    d = pos.shape[-1]
    grid = patches.reshape(1, f0, t0, d).permute(0, 3, 1, 2)  # [1, D, F, T]
    grid = _fit_axis(grid, new_grid[1], axis=3)
    grid = _fit_axis(grid, new_grid[0], axis=2)
    patches = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d)
    return torch.cat([special, patches], dim=1).contiguous()


def set_input_length(model: ASTModel, max_length: int) -> ASTModel:
    """Make ``model`` accept ``max_length`` frames, adapting its position embeddings in place."""
    emb = model.embeddings
    old, new = grid_shape(model.config), grid_shape(model.config, max_length)
    with torch.no_grad():
        adapted = adapt_position_embeddings(emb.position_embeddings.data, old, new)
    emb.position_embeddings = nn.Parameter(
        adapted, requires_grad=emb.position_embeddings.requires_grad
    )
    model.config.max_length = max_length
    emb.config.max_length = max_length
    return model


@contextlib.contextmanager
def quiet_transformers():
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def tiny_ast_config(**overrides) -> ASTConfig:
    """A very small AST (hidden 64, 4 layers, 4 heads) on the real front end (128 mel bins, 16x16 patches,
    1024-frame checkpoint) - for tests and the embedded demo. Its patches do not overlap (strides 16, an
    AST-paper ablation setting; the released AST uses 10), which makes it about 2x cheaper on a CPU."""
    kw = dict(
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=256,
        max_length=1024,
        num_mel_bins=128,
        frequency_stride=16,
        time_stride=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    kw.update(overrides)
    return ASTConfig(**kw)


def make_tiny_checkpoint(directory: str | os.PathLike, *, seed: int = 0, **overrides) -> Path:
    """Write a randomly initialised tiny AST with ``save_pretrained`` (safetensors), atomically.

    Unlike HF's init (zeros), the CLS/distillation tokens and position embeddings get truncated-normal
    values (std 5 x initializer_range), so the "checkpoint" carries positional information to adapt.
    """
    directory = Path(directory)
    if (directory / "config.json").is_file():
        return directory
    torch.manual_seed(seed)
    model = ASTModel(tiny_ast_config(**overrides))
    std = model.config.initializer_range
    with torch.no_grad():
        for p in (
            model.embeddings.position_embeddings,
            model.embeddings.cls_token,
            model.embeddings.distillation_token,
        ):
            nn.init.trunc_normal_(p, std=std * 5)
    tmp = directory.with_name(f".{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_transformers():
        model.save_pretrained(tmp)
    directory.parent.mkdir(parents=True, exist_ok=True)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return directory


def check_source(source: str | os.PathLike, *, local_files_only: bool | None = None) -> ASTConfig:
    """The config of ``source``; fails fast (before any data work) when it is not a loadable AST config.
    ``"tiny"`` always is."""
    src = str(source)
    if src == TINY:
        return tiny_ast_config()
    if local_files_only is None:
        local_files_only = bool(os.environ.get("HF_HUB_OFFLINE"))
    try:
        with quiet_transformers():
            cfg = ASTConfig.from_pretrained(src, local_files_only=local_files_only)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_load_hint(src, err)) from err
    if getattr(cfg, "model_type", None) != "audio-spectrogram-transformer":
        raise ModelLoadError(f"{src!r} is not an Audio Spectrogram Transformer checkpoint")
    return cfg


def is_tiny(config: ASTConfig) -> bool:
    """A small AST (the tiny test / demo model, hidden size <= 256): one torch thread and the tiny
    model's recipe suit it."""
    return config.hidden_size <= 256


def _load_hint(src: str, err: Exception) -> str:
    return (
        f"could not load the AST checkpoint {src!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
        "Without network access, download it elsewhere (e.g. `huggingface-cli download "
        f"{DEFAULT_CHECKPOINT}`) and pass the local folder, or use the tiny random model "
        f"(--model {TINY})."
    )


def load_ast(
    source: str | os.PathLike = DEFAULT_CHECKPOINT,
    *,
    max_length: int | None = None,
    local_files_only: bool | None = None,
    **kwargs,
) -> ASTModel:
    """Load an AST backbone from a hub id or local folder, then adapt it to ``max_length`` input frames.

    ``source`` may be an ``ASTModel`` or ``ASTForAudioClassification`` checkpoint (the head is dropped).
    Raises :class:`ModelLoadError` with an offline hint when it cannot be loaded.
    """
    src = str(source)
    if local_files_only is None:
        local_files_only = bool(os.environ.get("HF_HUB_OFFLINE"))
    try:
        with quiet_transformers():
            model = ASTModel.from_pretrained(src, local_files_only=local_files_only, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_load_hint(src, err)) from err
    if getattr(model.config, "model_type", None) != "audio-spectrogram-transformer":
        raise ModelLoadError(f"{src!r} is not an Audio Spectrogram Transformer checkpoint")
    if max_length is not None and max_length != model.config.max_length:
        set_input_length(model, max_length)
    return model


class ASTClassifier(nn.Module):
    """AST backbone + linear head on the mean of all output tokens (after the final LayerNorm)."""

    def __init__(self, ast: ASTModel, num_classes: int):
        super().__init__()
        self.ast = ast
        self.head = nn.Linear(ast.config.hidden_size, num_classes)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        tokens = self.ast(input_values=input_values).last_hidden_state  # final LayerNorm applied
        return self.head(tokens.mean(dim=1))


def build_classifier(
    source: str | os.PathLike,
    num_classes: int,
    max_length: int,
    *,
    tiny_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> ASTClassifier:
    """:class:`ASTClassifier` for ``source`` (hub id, folder, or ``"tiny"``) at ``max_length`` frames.

    ``"tiny"`` writes (once) a tiny random checkpoint to ``tiny_dir`` and loads it through the same path as a
    real checkpoint, so position-embedding adaptation is exercised.
    """
    if str(source) == TINY:
        if tiny_dir is None:
            raise ValueError("the tiny model needs tiny_dir (where to write its checkpoint)")
        source = make_tiny_checkpoint(tiny_dir, seed=seed)
    backbone = load_ast(source, max_length=max_length)
    torch.manual_seed(seed)
    return ASTClassifier(backbone, num_classes)
