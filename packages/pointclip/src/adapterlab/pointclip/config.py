"""The dataclass configs of adapterlab.pointclip: one per CLI subcommand plus the training settings.

Every field documents itself (the docstring under it is its ``--help`` text). ``None`` means "the
published / preset default for the chosen model", resolved in one place:
:func:`preset_pretrain_config` for pre-training and :meth:`PipelineConfig.resolved` for run-all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .defaults import TINY, resolve_pretrained

__all__ = [
    "FewShotCommandConfig",
    "FewShotConfig",
    "PipelineConfig",
    "PretrainCommandConfig",
    "PretrainConfig",
    "RenderPairsConfig",
    "RunAllOptions",
    "ZeroShotConfig",
    "preset_pretrain_config",
    "resolve_pretrained",
]

#: The NT-Xent temperature of CLIP2Point (lightly's ``NTXentLoss(temperature=0.07)``).
DEFAULT_TEMPERATURE = 0.07
#: The original's warm-restart floor relative to its peak (``eta_min`` 1e-5 at Lamb lr 0.006).
RESTART_MIN_LR_RATIO = 1e-5 / 0.006


@dataclass
class PretrainConfig:
    """Settings of image-depth pre-training (defaults: the tiny CPU preset; paper values in
    brackets). :func:`preset_pretrain_config` gives the defaults of any model."""

    adapter: str = "full"
    """"full" (train the whole depth encoder, as the paper) or a core preset name ("lora",
    "pfeiffer", "houlsby", "bitfit", ...) applied to the depth encoder only."""
    epochs: int = 40
    """Training epochs [100]."""
    batch_size: int = 32
    """Pairs per step [256]; NT-Xent negatives come from the batch."""
    lr: float = 1e-3
    """Peak learning rate [0.006 with Lamb; ours 1e-5 AdamW at ViT-B/32 width]."""
    weight_decay: float = 1e-4
    """Weight decay [1e-4]."""
    scheduler: str = "cosine"
    """Engine scheduler ["cosine_restarts"]."""
    warmup_steps: int | None = 0
    """Linear warm-up steps (None: 10 % of the run's steps, at most 500; the original had none)."""
    jitter: float = 0.1
    """Camera-distance jitter of the two depth renders [0.1]."""
    temperature: float = DEFAULT_TEMPERATURE
    """NT-Xent temperature [0.07]."""
    num_points: int = 1024
    """Points per cloud [1024]."""
    num_views: int = 10
    """Views the random view is drawn from [10]."""
    views_per_object: int = 4
    """Samples per object per epoch, each with its own random view [1]."""
    seed: int = 0
    """Seed of the engine and the view draws."""
    eval_batch_size: int = 128
    """Batch size of validation / test retrieval."""
    restart_epochs: int = 2
    """Period of "cosine_restarts" in epochs [2]."""
    min_lr: float | None = None
    """Floor of the schedule (None: 0 for "cosine"; for "cosine_restarts" lr x 1e-5/0.006, the
    original's eta_min-to-peak ratio, so every restart anneals the rate by the same factor)."""
    min_restart_steps: int = 20
    """Lower bound of that period in optimiser steps (ours: on a small set at batch 256, 2 epochs
    are 2 steps and the schedule never anneals)."""
    w_lr: float = 0.006
    """Learning rate of the loss weight w [0.006]."""
    freeze_patch_embed: bool = False
    """Keep the depth encoder's patch projection fixed (MoCo v3; ours)."""
    adapter_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra fields of the core adapter preset (e.g. {"r": 16})."""
    mixed_precision: str = "no"
    """Engine autocast on GPU ["no": the original ran fp32]."""

    def schedule_min_lr(self) -> float:
        """The schedule's floor: ``min_lr`` if set, else ``lr`` x 1e-5/0.006 for warm restarts
        (the original's ratio: its restarts anneal 0.006 -> 1e-5) and 0 for plain cosine."""
        if self.min_lr is not None:
            return self.min_lr
        return self.lr * RESTART_MIN_LR_RATIO if self.scheduler == "cosine_restarts" else 0.0


def preset_pretrain_config(
    model_name: str, pretrained: str | None, **overrides: Any
) -> PretrainConfig:
    """The one source of pre-training defaults (CLI ``pretrain`` and ``run-all`` both use it).

    ``tiny``: the CPU preset (cosine, lr 1e-3, batch 32, 40 epochs, 4 views per object; patch
    embedding frozen when random). Any other model: the paper's schedule (cosine warm restarts
    every 2 epochs, batch 256, 100 epochs) with AdamW at lr 1e-5 and a 10 % linear warm-up.
    At ViT-B/32 width, AdamW at 1e-4 without warm-up destroys the encoder in one step: Adam's
    first update moves every weight by ~lr, and at width 768 this coherent move collapses the
    depth features (test_pretrain_fullscale.py). ``overrides`` that are not None win.
    """
    tiny = model_name == TINY
    random_init = resolve_pretrained(model_name, pretrained) == "none"
    base = PretrainConfig(
        epochs=40 if tiny else 100,
        batch_size=32 if tiny else 256,
        lr=1e-3 if tiny else 1e-5,
        views_per_object=4 if tiny else 1,
        scheduler="cosine" if tiny else "cosine_restarts",
        warmup_steps=0 if tiny else None,
        freeze_patch_embed=tiny and random_init,
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class FewShotConfig:
    """Few-shot head settings (paper values in brackets)."""

    head: Literal["dpa", "pointclip"] = "dpa"
    """"dpa" (Dual-Path Adapter) or "pointclip" (inter-view adapter, single path)."""
    shots: int = 16
    """Samples per class drawn from the training split [16]."""
    seed: int = 0
    """Seed of the shot draw and of the engine."""
    val_fraction: float = 0.2
    """Stratified share of the training split kept for model selection."""
    epochs: int = 100
    """Epochs [100 for DPA, 250 for PointCLIP]."""
    batch_size: int = 32
    """Batch size [32]."""
    lr: float = 1e-3
    """Learning rate [1e-3 AdamW for DPA; PointCLIP used SGD 0.01 + cosine]."""
    weight_decay: float = 1e-4
    """Weight decay [1e-4]."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """Engine optimiser: "adamw" [DPA] or "sgd" [PointCLIP]."""
    scheduler: Literal["none", "cosine"] = "none"
    """Engine scheduler: "none" [DPA] or "cosine" [PointCLIP]."""
    warmup_epochs: int = 0
    """Linear warm-up epochs [DPA 0; PointCLIP 1 (Dassl: constant 1e-5 for one epoch)]."""
    mixed_precision: str = "no"
    """Engine autocast on GPU ["no": the original ran fp32]."""


# --------------------------------------------------------------------------- CLI subcommands


@dataclass
class _ModelArgs:
    model: str = TINY
    """open_clip architecture (ViT-B-32, ViT-B-16, RN50, ...) or 'tiny', a narrow random ViT for
    CPU smoke runs."""
    pretrained: str | None = None
    """Pretrained tag (openai, laion2b_s34b_b79k, ...), a local checkpoint file (.safetensors /
    .bin / .pt state dict), or 'none' for random weights. Default: 'none' for tiny, 'openai'
    otherwise. Offline machines need a local file or 'none'."""
    quick_gelu: bool | None = None
    """Build the model with QuickGELU (OpenAI CLIP's activation). Default: decided from the tag,
    OpenAI's checkpoint layout or the file's metadata (safetensors metadata 'quick_gelu', or an
    open_clip_config.json beside it); a local file without any of these needs this flag."""
    device: str | None = None
    """cpu, cuda, cuda:1, ... (default: cuda if available)."""
    image_size: int | None = None
    """Override the encoder's input size (random weights only; default: the model's)."""

    def __post_init__(self) -> None:
        self.pretrained = resolve_pretrained(self.model, self.pretrained)


@dataclass
class _EvalDataArgs:
    data: str = ""
    """ModelNet10/40 .off folder (<class>/{train,test}/*.off), modelnet40_ply_hdf5_2048 folder,
    or ScanObjectNN h5_files folder (required)."""
    variant: Literal["OBJ_BG", "OBJ_ONLY", "PB_T50_RS"] = "OBJ_BG"
    """ScanObjectNN variant."""
    num_points: int = 1024
    """Points per cloud."""
    views: Literal[6, 10] | None = None
    """Rendered views per cloud (default: the method's published setting: zero-shot 6 for
    clip2point and pointclip, few-shot 10, realistic 10). With --projection pointclip, 6 views is
    V1's zero-shot projection (128 px, TRANS -1.6), 10 its few-shot one (224 px, TRANS -1.4)."""
    projection: Literal["clip2point", "pointclip", "realistic"] = "clip2point"
    """Depth projection: clip2point (orthographic splats), pointclip (PointCLIP V1 perspective),
    realistic (PointCLIP V2)."""
    skip_bad: bool = False
    """Skip and count unreadable files (.off meshes) instead of stopping at the first one."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]  # the model arguments (next in the MRO)
        if not self.data:
            raise ValueError(
                "--data is required (a ModelNet, ModelNet40_Ply, modelnet40 h5 or ScanObjectNN "
                "folder)"
            )


@dataclass
class RenderPairsConfig:
    """Turn a folder of meshes (ModelNet .off, ShapeNetCore.v2 .obj, or any mesh files) into
    OUT/rendering/<id>/<view>.png, OUT/points/<id>.npy and OUT/index.json. Resumes (finished,
    verified items are skipped); bad meshes are reported and skipped. Headless rendering uses
    PYOPENGL_PLATFORM=egl (osmesa is the fallback). Usage: render-pairs MESH_ROOT OUT_ROOT."""

    mesh_root: str = ""
    """Folder of meshes (first positional argument)."""
    out_root: str = ""
    """Output folder of the pairs (second positional argument)."""
    views: Literal[6, 10] = 10
    """Views per mesh."""
    points: int = 8192
    """Surface points stored per mesh."""
    image_size: int = 224
    """RGB render size in pixels."""
    random_light: bool = True
    """Random light direction per view (CLIP2Point's training renders; --no-random-light: light
    from the camera)."""
    camera: Literal["perspective", "orthographic"] = "orthographic"
    """RGB camera (run-all and the embedded default render orthographic; CLIP2Point's
    PyTorch3D meshes used a perspective camera at twice the depth distance)."""
    limit: int | None = None
    """Render at most N meshes."""
    fail_on_bad: bool = False
    """Stop at the first bad mesh (default: skip and count it)."""
    seed: int = 0
    """Random seed of the point sampling and the light directions."""
    overwrite: bool = False
    """OUT_ROOT holds renders made with other settings (stored in render_settings.json): delete
    them and render again (default: refuse)."""

    def __post_init__(self) -> None:
        if not self.mesh_root or not self.out_root:
            raise ValueError("render-pairs needs MESH_ROOT and OUT_ROOT (two positional arguments)")


@dataclass
class PretrainCommandConfig(_ModelArgs):
    """CLIP2Point pre-training: the CLIP image encoder is frozen, the depth encoder (initialised
    from it) learns with NT-Xent losses (temperature 0.07) between two jittered depth renders and
    the RGB render of the same view; total = L_img + L_depth/w^2 + log(w+1). The checkpoint is
    chosen on validation retrieval (val split of the pairs). Unset options take the model's
    preset (tiny: cosine, 40 epochs, batch 32, lr 1e-3; others: warm restarts, 100 epochs,
    batch 256, AdamW lr 1e-5 with 10 % warm-up)."""

    pairs: str = ""
    """Folder written by render-pairs (required)."""
    out: str = ""
    """Run directory (required)."""
    adapter: str = "full"
    """'full' (train the whole depth encoder, as the paper) or a core preset on the depth
    encoder: lora, dora, pfeiffer, houlsby, bitfit, ..."""
    epochs: int | None = None
    """Epochs (tiny: 40, else 100)."""
    batch_size: int | None = None
    """Pairs per step (tiny: 32, else 256)."""
    lr: float | None = None
    """Learning rate (tiny: 1e-3, else 1e-5 AdamW)."""
    views_per_object: int | None = None
    """Random views drawn per object per epoch (tiny: 4, else 1)."""
    jitter: float | None = None
    """Camera-distance jitter (default: PretrainConfig's, the paper's 0.1)."""
    freeze_patch_embed: bool | None = None
    """Keep the patch projection fixed (MoCo v3); default: on for the random tiny preset only."""
    seed: int = 0
    """Random seed."""
    overwrite: bool = False
    """Replace an existing run directory."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.pairs or not self.out:
            raise ValueError("pretrain needs --pairs (a render-pairs folder) and --out")


@dataclass
class ZeroShotConfig(_EvalDataArgs, _ModelArgs):
    """Zero-shot classification: render each test cloud from several views, encode the views,
    compare with the class prompts' text features and sum the view scores (optionally
    weighted)."""

    ckpt: str | None = None
    """Pre-trained depth encoder (depth_encoder.safetensors, a pre-training adapter folder, or an
    original CLIP2Point .pth); default: the original CLIP encoder."""
    split: Literal["train", "test"] = "test"
    """Split to classify."""
    templates: list[str] = field(default_factory=lambda: ["clip2point"])
    """Template set (clip2point, pointclip, ensemble) or templates with {} (clip2point = 'image
    of a {}', the original's prompt)."""
    no_ensemble: bool = False
    """Use only the first template."""
    view_weights: str | None = None
    """Comma-separated per-view weights (default: equal)."""
    out: str | None = None
    """Write the result as JSON to this file."""


@dataclass
class FewShotCommandConfig(_EvalDataArgs, _ModelArgs):
    """Few-shot training of the Dual-Path Adapter (or PointCLIP's adapter): draw K shots per class
    (seeded) from the training split after carving a validation split from it, train the head
    with the core engine, select the checkpoint on validation accuracy and report test accuracy
    at that checkpoint."""

    ckpt: str | None = None
    """Pre-trained depth encoder for the DPA's first path (without it both paths use the
    original CLIP encoder)."""
    head: Literal["dpa", "pointclip"] = "dpa"
    """Few-shot head."""
    shots: list[int] = field(default_factory=lambda: [16])
    """K values (e.g. --shots 1 2 4 8 16)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds of the shot draws."""
    epochs: int | None = None
    """Training epochs (default: FewShotConfig's, the paper's 100)."""
    lr: float | None = None
    """AdamW learning rate (default: FewShotConfig's, 1e-3)."""
    batch_size: int | None = None
    """Batch size (default: FewShotConfig's, 32)."""
    templates: str = "clip2point"
    """Prompt template set for the text side."""
    out: str = ""
    """Output folder (one engine run per K and seed; required)."""
    overwrite: bool = False
    """Replace existing runs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.out:
            raise ValueError("fewshot needs --out (output folder)")


@dataclass
class PipelineConfig:
    """The main job: data -> image-depth pairs -> pre-training -> zero-/few-shot -> report. On
    defaults it generates the embedded ModelNet-format dataset into ./data, renders the pairs,
    pre-trains a tiny CLIP's depth encoder, evaluates zero-shot and 16-shot DPA, and writes
    runs/clip2point/<timestamp>/ (config.yaml, metrics.json, encoder/, fewshot_*/, curves.png,
    views.png). DATA: a ModelNet folder (pre-training on its training meshes + classification),
    a ShapeNetCore.v2 folder (pre-training; classification on the embedded data), or
    'SHAPENET,MODELNET' (both). None means the default for the chosen model / data."""

    data: str | None = None
    """Dataset folder(s), see above (default: the embedded dataset)."""
    pretrain_data: str | None = None
    """Mesh folder for pre-training (overrides), or 'cgal': the 138 real .off meshes of Debian's
    libcgal-demo, fetched with apt-get download into DATA_DIR/cgal_meshes (falls back to the
    procedural meshes, with a message, when apt is unavailable)."""
    pairs: str | None = None
    """Reuse / write the pairs here (default: ./data/pairs/...)."""
    model: str | None = None
    """open_clip architecture (ViT-B-32, ...) or 'tiny' (narrow random ViT for CPU runs);
    default: tiny (--preset paper: ViT-B-32)."""
    pretrained: str | None = None
    """Pretrained tag, a local checkpoint file, or 'none' (default: none for tiny, else openai)."""
    quick_gelu: bool | None = None
    """QuickGELU (OpenAI CLIP) or GELU; default: decided from the weights' tag, layout or
    metadata (a local file without any of these needs this flag)."""
    out: str | None = None
    """Run directory (default: runs/clip2point/<timestamp>)."""
    data_dir: str = "data"
    """Where generated data and pairs live."""
    overwrite: bool = False
    """Replace a non-empty --out."""
    seed: int = 0
    """Random seed."""
    device: str | None = None
    """cpu, cuda, cuda:1, ... (default: cuda if available)."""
    per_class_train: int = 30
    """Embedded data: train meshes per class."""
    per_class_test: int = 10
    """Embedded data: test meshes per class."""
    num_views: int | None = None
    """Views of the pairs and of the few-shot renders (default 10; zero-shot uses the
    published 6)."""
    max_meshes: int | None = None
    """Render / pre-train on at most N meshes."""
    adapter: str = "full"
    """Depth-encoder training: full or a core preset."""
    pretrain_epochs: int | None = None
    """Pre-training epochs (tiny: 40, else 100)."""
    pretrain_batch_size: int | None = None
    """Pre-training batch (tiny: 32, else 256)."""
    pretrain_lr: float | None = None
    """Pre-training learning rate (tiny: 1e-3, else 1e-5)."""
    views_per_object: int | None = None
    """Random views per object per pre-training epoch (tiny: 4, else 1)."""
    freeze_patch_embed: bool | None = None
    """Keep the patch projection fixed (default: on for the random tiny preset only)."""
    random_light: bool = True
    """Render the RGB views with a random light (as CLIP2Point's training renders);
    --no-random-light lights them from the camera."""
    num_points: int = 1024
    """Points per cloud."""
    shots: int | None = None
    """K of the few-shot evaluation (default 16, the paper's)."""
    fewshot_epochs: int | None = None
    """Few-shot epochs (tiny: 60, else 100)."""
    fewshot_lr: float = 1e-3
    """Few-shot AdamW learning rate (DPA)."""
    fewshot_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds of the K-shot draws; accuracies are averaged."""
    pointclip_epochs: int | None = None
    """Epochs of the "PointCLIP adapter (published recipe)" row, each a pass over the shots and
    their augmented copies (published: 250 with a fresh augmentation per epoch; tiny default:
    12, i.e. 60 shot-epochs over 1 + 4 copies, scaled down as the DPA's 100 -> 60)."""
    pointclip_augment_copies: int = 4
    """Scale/shift-augmented copies of each shot rendered for that row (ours: the frozen encoder
    lets a fixed pool replace per-epoch augmentation)."""
    image_size: int | None = None
    """Override the encoder's input size (random weights only)."""
    templates: str = "clip2point"
    """Prompt template set."""
    scanobjectnn_variant: str = "OBJ_BG"
    """ScanObjectNN variant when DATA is an h5_files folder."""
    progress: bool = True
    """Progress bars (--no-progress: none)."""
    threads: int | None = None
    """Torch CPU threads (default: 1 for the tiny model on CPU, else torch's default)."""
    preset: Literal["default", "paper"] = "default"
    """paper: the published settings for every option not given explicitly (ViT-B-32 + openai
    weights; pre-training batch 256 x 100 epochs with warm restarts; 16-shot DPA, 100 epochs;
    10 views few-shot, 6 zero-shot; fp32). Explicit options win; each deviation from the paper
    is printed and recorded in metrics.json ("preset_deviations")."""
    dry_run: bool = False
    """Print the resolved options and exit."""

    def preset_deviations(self) -> dict[str, Any]:
        """Options given explicitly that differ from ``--preset paper``'s published value
        (empty unless the preset is "paper")."""
        if self.preset != "paper":
            return {}
        paper: dict[str, Any] = {"model": "ViT-B-32", "shots": 16, "num_views": 10}
        if self.model in (None, "ViT-B-32"):
            paper.update(
                {
                    "pretrained": "openai",
                    "pretrain_batch_size": 256,
                    "pretrain_epochs": 100,
                    "fewshot_epochs": 100,
                }
            )
        return {
            k: getattr(self, k)
            for k, v in paper.items()
            if getattr(self, k) is not None and getattr(self, k) != v
        }

    def resolved(self) -> PipelineConfig:
        """A copy with the preset and the model-dependent defaults filled in. Options given
        explicitly (not None) always win over the preset."""
        o = PipelineConfig(**asdict(self))
        if o.model is None:
            o.model = "ViT-B-32" if o.preset == "paper" else TINY
        if o.shots is None:
            o.shots = 16
        if o.num_views is None:
            o.num_views = 10
        tiny = o.model == TINY
        o.pretrained = resolve_pretrained(o.model, o.pretrained)
        pre = preset_pretrain_config(
            o.model,
            o.pretrained,
            epochs=o.pretrain_epochs,
            batch_size=o.pretrain_batch_size,
            lr=o.pretrain_lr,
            views_per_object=o.views_per_object,
            freeze_patch_embed=o.freeze_patch_embed,
        )
        o.pretrain_epochs, o.pretrain_batch_size, o.pretrain_lr = pre.epochs, pre.batch_size, pre.lr
        o.views_per_object, o.freeze_patch_embed = pre.views_per_object, pre.freeze_patch_embed
        if o.fewshot_epochs is None:
            o.fewshot_epochs = 60 if tiny else 100
        if o.pointclip_epochs is None:
            o.pointclip_epochs = 12 if tiny else 250
        return o


#: The earlier name of :class:`PipelineConfig`.
RunAllOptions = PipelineConfig
