"""CLIP2Point image-depth pre-training (Huang et al., ICCV 2023, Sec. 3.2).

The image encoder (CLIP's visual tower) is frozen; the depth encoder starts as a copy of it and is
trained (fully, or through any core adapter: LoRA, bottleneck, ...). For each object one view is
drawn; two depth maps of that view are rendered with a +-10 % camera-distance jitter; the loss is
:class:`~.losses.Clip2PointLoss`: NT-Xent(mean(depth1, depth2), image) + NT-Xent(depth1, depth2)/w^2
+ log(w+1).

Deliberate deviations from the original code (``pretraining.py``):

* The frozen image encoder is applied once per (object, view) before training and its features
  are looked up during training. The original recomputes the same deterministic features every
  step (``image_model(images).detach()``); the result is identical and much cheaper.
* Optimiser: the engine's AdamW (``torch_optimizer.Lamb`` is not a dependency here) with a
  cosine schedule (the original: cosine with warm restarts every 2 epochs; configurable). The
  scalar ``w`` gets its own learning rate ``w_lr`` (default the original 0.006: Lamb's trust
  ratio makes a scalar's step about ``lr * |w|``, far larger than AdamW's step at a small lr).
* ``freeze_patch_embed`` (off by default; on for the random ``tiny`` preset in run-all) keeps
  the patch projection fixed, as MoCo v3 (Chen, Xie & He, ICCV 2021) does to stabilise
  contrastive ViT training: with a random encoder, one AdamW step on the patch filters shifts
  the embedding of the uniform render background and collapses all features.
* Model selection uses held-out *validation* objects carved from the training meshes (depth ->
  image retrieval top-1). The original kept the checkpoint with the best ModelNet40 *test*
  accuracy. Test retrieval is reported at the validation-best checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .clip import ClipBundle
from .encoders import load_encoder_weights, save_encoder_weights
from .losses import DEFAULT_TEMPERATURE, Clip2PointLoss

__all__ = [
    "Clip2PointPretrainModel",
    "ImageFeatureTable",
    "PretrainConfig",
    "PretrainDataset",
    "PretrainResult",
    "compute_image_features",
    "load_depth_encoder",
    "preset_pretrain_config",
    "retrieval_metrics",
    "run_pretraining",
]


@dataclass
class PretrainConfig:
    """Settings of image-depth pre-training (defaults: the tiny CPU preset; paper values in
    brackets).

    Attributes:
        adapter: "full" (train the whole depth encoder, as the paper) or a core preset name
            ("lora", "pfeiffer", "houlsby", "bitfit", ...) applied to the depth encoder only.
        epochs: training epochs [100].
        batch_size: pairs per step [256]; NT-Xent negatives come from the batch.
        lr: peak learning rate [0.006 with Lamb].
        weight_decay: [1e-4].
        scheduler: engine scheduler ["cosine_restarts"].
        restart_epochs: period of "cosine_restarts" in epochs [2].
        min_restart_steps: lower bound of that period in optimiser steps (ours: on a small set
            at batch 256, 2 epochs are 2 steps and the schedule never anneals).
        warmup_steps: linear warm-up steps before the schedule (None: 10 % of the run's steps,
            at most 500; ours, the original had none with Lamb).
        jitter: camera-distance jitter of the two depth renders [0.1].
        temperature: NT-Xent temperature [0.07].
        num_points: points per cloud [1024].
        num_views: views the random view is drawn from [10].
        views_per_object: samples per object per epoch, each with its own random view [1].
        seed: seed of the engine and the view draws.
        eval_batch_size: batch size of validation / test retrieval.
        w_lr: learning rate of the loss weight w [0.006].
        freeze_patch_embed: keep the depth encoder's patch projection fixed (MoCo v3).
        adapter_overrides: extra fields of the core adapter preset (e.g. {"r": 16}).
        mixed_precision: engine autocast on GPU ["no": the original ran fp32].
    """

    adapter: str = "full"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    warmup_steps: int | None = 0
    jitter: float = 0.1
    temperature: float = DEFAULT_TEMPERATURE
    num_points: int = 1024
    num_views: int = 10
    views_per_object: int = 4
    seed: int = 0
    eval_batch_size: int = 128
    restart_epochs: int = 2
    min_restart_steps: int = 20
    w_lr: float = 0.006
    freeze_patch_embed: bool = False
    adapter_overrides: dict[str, Any] = field(default_factory=dict)
    mixed_precision: str = "no"


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
    from dataclasses import replace

    from .clip import _NO_WEIGHTS, TINY_PRESET

    tiny = model_name == TINY_PRESET
    random_init = (pretrained or ("none" if tiny else "openai")).lower() in _NO_WEIGHTS
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


class Clip2PointPretrainModel(nn.Module):
    """Depth encoder + depth renderer + loss (with the learnable ``w``).

    Only ``depth_encoder`` and ``criterion`` hold parameters, so the core adapter API sees one
    open_clip backbone and the saved checkpoint holds the depth encoder (plus ``w``).
    """

    def __init__(
        self,
        visual: nn.Module,
        image_size: int,
        num_views: int = 10,
        jitter: float = 0.1,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        super().__init__()
        from ..render import DepthRenderer

        self.depth_encoder = copy.deepcopy(visual)
        for p in self.depth_encoder.parameters():
            p.requires_grad_(True)
        self.criterion = Clip2PointLoss(temperature)
        self.renderer = DepthRenderer(
            mode="clip2point", num_views=num_views, image_size=image_size, jitter=jitter
        )

    def render_view(
        self, points: torch.Tensor, view: torch.Tensor, jitter: bool = True
    ) -> torch.Tensor:
        """Depth maps ``[B, 3, S, S]`` of one view per cloud (``view``: ``[B]`` indices)."""
        dist = None if jitter else torch.ones(points.shape[0], device=points.device)
        return self.renderer(points, views=view.view(-1, 1), dist_scale=dist)[:, 0]

    def forward(
        self, points: torch.Tensor, view: torch.Tensor, image_feat: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Loss dict for a batch: two jittered renders of ``view`` vs the frozen image feature."""
        b = points.shape[0]
        depths = torch.cat([self.render_view(points, view), self.render_view(points, view)])
        feats = self.depth_encoder(depths)
        return self.criterion(feats[:b], feats[b:], image_feat)

    @torch.no_grad()
    def embed_depth(self, points: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """Depth features of un-jittered renders (for retrieval and evaluation)."""
        return self.depth_encoder(self.render_view(points, view, jitter=False))


@dataclass
class ImageFeatureTable:
    """Frozen-image-encoder features of every stored RGB view: ``features[i, v]`` for ``ids[i]``."""

    ids: list[str]
    features: torch.Tensor  # [N, V, D] float32, cpu

    def row(self, item_id: str) -> int:
        """Row of an object id."""
        if not hasattr(self, "_index"):
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index[item_id]


@torch.no_grad()
def compute_image_features(
    visual: nn.Module, pairs: Dataset, batch_size: int = 32, progress: bool = True
) -> ImageFeatureTable:
    """Encode every RGB view of a pairs dataset (``views="all"``) with the frozen image encoder."""
    from adapterlab.core.engine import progress_enabled
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    device = next(visual.parameters()).device
    was_training = visual.training
    visual.eval()
    ids, feats = [], []
    loader = DataLoader(pairs, batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in tqdm(
        loader, desc="image features", disable=not progress_enabled(progress), leave=False
    ):
        images = batch["images"]
        b, v = images.shape[:2]
        out = visual(images.reshape(b * v, *images.shape[2:]).to(device)).float()
        feats.append(out.reshape(b, v, -1).cpu())
        ids.extend(batch["id"])
    visual.train(was_training)
    if not feats:
        raise ValueError("No image-depth pairs to encode (empty split)")
    return ImageFeatureTable(ids=ids, features=torch.cat(feats))


class PretrainDataset(Dataset):
    """Points + a view index + the frozen image feature of that view.

    Args:
        pairs: an ``ImageDepthPairs`` split (points and ids are taken from it).
        table: image features of the same objects.
        views_per_object: training: each object appears this many times per epoch, each time
            with a fresh random view (CLIP2Point draws one random view per object).
        all_views: evaluation: every (object, view) pair once, arranged in V rounds; in round
            r object i shows view (i + r) mod V. Items carry ``round`` so retrieval runs inside a
            round (N candidates, one view per object, as in a CLIP2Point batch) and is averaged
            over the rounds.
    """

    def __init__(
        self,
        pairs: Any,
        table: ImageFeatureTable,
        views_per_object: int = 1,
        all_views: bool = False,
    ) -> None:
        self.pairs, self.table = pairs, table
        self.num_views = table.features.shape[1]
        self.all_views = all_views
        self.repeat = self.num_views if all_views else max(1, int(views_per_object))

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def _split(self, index: int) -> tuple[int, int | None]:
        n = len(self.pairs)
        if self.all_views:
            rnd, i = divmod(index, n)
            return i, (i + rnd) % self.num_views
        return index % n, None

    def describe(self, index: int) -> str:
        """The object id (and the pairs folder) behind an index."""
        i, _ = self._split(index)
        return f"{getattr(self.pairs, 'root', '')}:{self.pairs.ids[i]}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        i, view = self._split(index)
        points = self.pairs.points(i)  # the image side is the cached feature: no PNG decode
        if view is None:
            view = int(torch.randint(self.num_views, (1,)))
        row = self.table.row(self.pairs.ids[i])
        return {
            "points": points,
            "view": torch.tensor(view, dtype=torch.long),
            "round": torch.tensor(index // len(self.pairs), dtype=torch.long),
            "image_feat": self.table.features[row, view],
        }


def retrieval_metrics(
    depth: torch.Tensor, image: torch.Tensor, groups: torch.Tensor | None = None
) -> dict[str, float]:
    """Top-1 / top-5 retrieval between paired features (``depth[i]`` matches ``image[i]``).

    With ``groups`` retrieval runs inside each group (candidates = the group's image features)
    and the results are averaged over all pairs. ``retrieval_chance`` is the expected top-1 of
    a random ranking.
    """
    if groups is None:
        groups = torch.zeros(depth.shape[0], dtype=torch.long)
    d = F.normalize(depth.float(), dim=-1)
    im = F.normalize(image.float(), dim=-1)
    groups = groups.to(d.device)
    top1 = top5 = i2d = chance = 0.0
    n = d.shape[0]
    for g in torch.unique(groups):
        idx = (groups == g).nonzero().squeeze(1)
        sim = d[idx] @ im[idx].t()
        target = torch.arange(len(idx), device=sim.device)
        k = min(5, len(idx))
        top1 += float((sim.argmax(1) == target).sum())
        top5 += float((sim.topk(k, dim=1).indices == target[:, None]).any(1).sum())
        i2d += float((sim.argmax(0) == target).sum())
        chance += 1.0  # len(idx) pairs, each with chance 1 / len(idx)
    return {
        "retrieval_top1": top1 / n,
        "retrieval_top5": top5 / n,
        "retrieval_i2d_top1": i2d / n,
        "retrieval_chance": chance / n,
    }


def _logging_metric_fn(epochs: int) -> Any:
    """``_metric_fn`` that also prints one line per evaluation (progress when no bar is shown)."""
    count = {"n": 0}

    def fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        metrics = _metric_fn(outputs)
        count["n"] += 1
        print(
            f"      pretrain eval {count['n']}: retrieval top-1 {metrics['retrieval_top1']:.3f}"
            f" (chance {metrics['retrieval_chance']:.3f}, {epochs} epochs)",
            flush=True,
        )
        return metrics

    return fn


def _param_groups(model: Clip2PointPretrainModel, w_lr: float) -> list[dict[str, Any]]:
    """Depth-encoder (or adapter) parameters at the run's lr; ``w`` at ``w_lr``, no decay."""
    w = model.criterion.w
    rest = [p for p in model.parameters() if p.requires_grad and p is not w]
    return [{"params": rest}, {"params": [w], "lr": w_lr, "weight_decay": 0.0}]


def _loss_fn(model: Clip2PointPretrainModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return model(batch["points"], batch["view"], batch["image_feat"])


def _eval_step(model: Clip2PointPretrainModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {
        "depth": model.embed_depth(batch["points"], batch["view"]),
        "image": batch["image_feat"],
        "view": batch["view"],
        "round": batch["round"],
    }


def _metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Retrieval within each round (mixed views, the headline number) and, as a harder variant,
    within each view ("which object is this, given the view")."""
    out = retrieval_metrics(outputs["depth"], outputs["image"], outputs["round"])
    same_view = retrieval_metrics(outputs["depth"], outputs["image"], outputs["view"])
    out["retrieval_top1_same_view"] = same_view["retrieval_top1"]
    return out


def adapter_config_for(cfg: PretrainConfig) -> Any:
    """Core adapter config that makes exactly the depth encoder's chosen parameters trainable.

    "full": every depth-encoder parameter (``modules_to_save``) + ``w``; otherwise the named core
    preset on the depth encoder (the only open_clip backbone in the model) + ``w``.
    """
    from adapterlab.core import LinearProbeConfig, get_config

    if cfg.adapter == "full":
        return LinearProbeConfig(modules_to_save=["depth_encoder", "criterion"])
    return get_config(cfg.adapter, modules_to_save=["criterion"], **cfg.adapter_overrides)


@dataclass
class PretrainResult:
    """What pre-training produced."""

    model: Clip2PointPretrainModel
    untrained: dict[str, float]
    val: dict[str, float]
    test: dict[str, float]
    run_dir: Path
    encoder_path: Path | None
    best_step: int | None
    config: dict[str, Any]
    adapter_dir: Path | None = None
    untrained_val: dict[str, float] = field(default_factory=dict)


def run_pretraining(
    clip: ClipBundle,
    pairs_root: str | Path,
    out_dir: str | Path,
    cfg: PretrainConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> PretrainResult:
    """Pre-train a depth encoder on an image-depth pairs folder with the core engine.

    Splits: ``train`` (training), ``val`` (model selection), ``test`` (reported, may be empty).
    Writes the engine run dir under ``out_dir`` and ``out_dir/depth_encoder.safetensors``
    (merged depth encoder at the validation-best step).
    """
    from adapterlab.core import add_adapter, save_adapter, trainable_summary
    from adapterlab.core.engine import TrainConfig, Trainer, progress_enabled

    from ..pairs import ImageDepthPairs

    cfg = cfg or PretrainConfig()
    out_dir = Path(out_dir)
    size = clip.image_size

    def pairs(split: str, views: str, seed: int | None) -> ImageDepthPairs:
        return ImageDepthPairs(
            pairs_root,
            num_points=cfg.num_points,
            split=split,
            image_size=size,
            views=views,
            seed=seed,
        )

    tables = {}
    for split in ("train", "val", "test"):
        ds = pairs(split, "all", 0)
        tables[split] = (
            compute_image_features(clip.visual, ds, progress=progress) if len(ds) else None
        )
    if tables["train"] is None or tables["val"] is None:
        raise ValueError(
            f"Pairs folder '{pairs_root}' needs objects in both the train and the val split "
            "(val is carved from train; add more meshes)"
        )
    train = PretrainDataset(pairs("train", "random", None), tables["train"], cfg.views_per_object)
    val = PretrainDataset(pairs("val", "random", 0), tables["val"], all_views=True)
    test = (
        PretrainDataset(pairs("test", "random", 0), tables["test"], all_views=True)
        if tables["test"] is not None
        else None
    )

    model = Clip2PointPretrainModel(
        clip.visual,
        size,
        num_views=tables["train"].features.shape[1],
        jitter=cfg.jitter,
        temperature=cfg.temperature,
    )
    add_adapter(model, adapter_config_for(cfg))
    if cfg.freeze_patch_embed:
        for name, p in model.depth_encoder.named_parameters():
            if name.startswith("conv1."):
                p.requires_grad_(False)
    device = next(clip.model.parameters()).device
    model.to(device)
    if len(train) < cfg.batch_size:
        raise ValueError(
            f"Pre-training needs at least batch_size={cfg.batch_size} training samples per epoch "
            f"(drop_last, as the original); '{pairs_root}' gives {len(train)}. Lower --batch-size "
            "or add meshes."
        )

    steps_per_epoch = len(train) // cfg.batch_size
    warmup = cfg.warmup_steps
    if warmup is None:
        warmup = min(500, cfg.epochs * steps_per_epoch // 10)
    train_cfg = TrainConfig(
        output_dir=str(out_dir),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        scheduler=cfg.scheduler,
        warmup_steps=warmup,
        restart_period=max(cfg.restart_epochs * steps_per_epoch, cfg.min_restart_steps),
        drop_last=True,  # the original's DataLoader; NT-Xent needs >= 2 pairs per batch
        mixed_precision=cfg.mixed_precision,
        min_lr=1e-5 if cfg.scheduler == "cosine_restarts" else 0.0,
        metric="retrieval_top1",
        metric_mode="max",
        seed=cfg.seed,
        progress=progress,
        overwrite=overwrite,
    )
    trainer = Trainer(
        model,
        train_cfg,
        train_data=train,
        loss_fn=_loss_fn,
        eval_data=val,
        test_data=test,
        eval_step=_eval_step,
        metric_fn=_logging_metric_fn(cfg.epochs)
        if progress and not progress_enabled()
        else _metric_fn,
        param_groups=lambda m: _param_groups(m, cfg.w_lr),
        run_config={
            "pretrain": asdict(cfg),
            "clip": _clip_info(clip),
            "trainable": str(trainable_summary(model)),
        },
    )
    untrained = trainer.evaluate(test if test is not None else val)
    untrained_val = trainer.evaluate(val)
    start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result = trainer.fit()
    best_step, test_metrics = result.best_step, dict(result.test_metrics or {})
    adapter_dir: Path | None = Path(result.run_dir) / "best"
    start_value = untrained_val.get("retrieval_top1", float("-inf"))
    if result.best_metric is None or start_value > result.best_metric:
        # step 0 (the untrained encoder) is a candidate too: never return a worse encoder
        model.load_state_dict(start_state)
        best_step = 0
        adapter_dir = out_dir / "best_step0"
        save_adapter(model, adapter_dir)
        test_metrics = trainer.evaluate(test) if test is not None else {}
    del start_state
    plain = _plain_encoder(model)
    encoder_path = (
        save_encoder_weights(plain, out_dir / "depth_encoder.safetensors")
        if plain is not None
        else None
    )
    val_metrics = trainer.evaluate(val)
    return PretrainResult(
        model=model,
        untrained=untrained,
        val=val_metrics,
        test=test_metrics,
        run_dir=Path(result.run_dir),
        encoder_path=encoder_path,
        best_step=best_step,
        config=asdict(cfg),
        adapter_dir=adapter_dir,
        untrained_val=untrained_val,
    )


def _clip_info(clip: ClipBundle) -> dict[str, Any]:
    return {
        "model": clip.model_name,
        "pretrained": clip.pretrained,
        "image_size": clip.image_size,
        "embed_dim": clip.embed_dim,
    }


def _plain_encoder(model: Clip2PointPretrainModel) -> nn.Module | None:
    """The trained depth encoder as a plain open_clip module (adapters merged), or None.

    Full training returns ``model.depth_encoder`` itself; LoRA / BitFit are merged into a copy;
    adapters that cannot merge (bottleneck, prompts) give None - their artefact is the engine's
    adapter folder (``best/``), loadable with :func:`load_depth_encoder`.
    """
    from adapterlab.core import list_adapters, merge_adapter

    cfg = list_adapters(model).get("default")
    if cfg is None or cfg.method in ("linear_probe", "full"):
        return model.depth_encoder
    merged = copy.deepcopy(model)
    try:
        merge_adapter(merged)
    except ValueError:
        return None
    return merged.depth_encoder


def load_depth_encoder(clip: ClipBundle, path: str | Path) -> nn.Module:
    """A pre-trained depth encoder from a ``.safetensors``/``.pth`` file (plain encoder weights,
    e.g. ``depth_encoder.safetensors`` or an original CLIP2Point checkpoint) or from an adapter
    folder written by pre-training (``adapter_config.json`` + ``adapter.safetensors``)."""
    from adapterlab.core import load_adapter

    path = Path(path)
    if path.is_dir():
        if not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"'{path}' is a folder without adapter_config.json; pass a "
                "depth_encoder.safetensors file or a pre-training adapter folder (<run>/pretrain/best)"
            )
        model = Clip2PointPretrainModel(clip.visual, clip.image_size)
        load_adapter(model, path)
        model.to(next(clip.model.parameters()).device)
        return model.depth_encoder.eval()
    encoder = clip.copy_visual()
    return load_encoder_weights(encoder, path).eval()
