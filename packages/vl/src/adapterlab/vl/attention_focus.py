"""Where the frozen question encoder's cross-attention goes on the embedded scenes.

The p-adapter re-weights the edges of each attention graph (p-Laplacian message passing); that
can only matter where the graph's weight is spread over nodes that do not answer the question.
This measures it on the embedded default: the share of the cross-attention mass (question
tokens -> image tokens, averaged over layers, heads and question tokens) that lands on the
patches of the large shapes the questions are about, on the distractor patches, and on the
rest (background and the image [CLS] token), next to each group's share of the image tokens.
An attention that ignored the distractors would give them ~0 % of the mass whatever their area.
Our diagnostic (the paper reports none); it reads the ``train`` scenes, the only ones whose
ground truth is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .data import load_image, load_vqav2, read_scenes

__all__ = ["cross_attention_focus", "scene_patch_groups"]


def scene_patch_groups(scene: dict, grid: int) -> tuple[set[int], set[int]]:
    """(target patches, distractor patches) of a scene on a ``grid`` x ``grid`` patch layout
    (row-major indices, without the [CLS] token); a patch holding both counts as a target."""
    per_cell = grid / 3
    targets = set()
    for obj in scene["objects"]:
        r, c = obj["cell"]
        rows = range(int(r * per_cell), int((r + 1) * per_cell))
        cols = range(int(c * per_cell), int((c + 1) * per_cell))
        targets |= {i * grid + j for i in rows for j in cols}
    distractors = set()
    for d in scene.get("distractors", []):
        (x, y), radius = d["xy"], d["radius"]
        rows = range(int((y - radius) * per_cell), int((y + radius) * per_cell) + 1)
        cols = range(int((x - radius) * per_cell), int((x + radius) * per_cell) + 1)
        distractors |= {i * grid + j for i in rows for j in cols if i < grid and j < grid}
    return targets, distractors - targets


@torch.no_grad()
def cross_attention_focus(backbone: Any, root: str | Path, max_questions: int = 300) -> dict:
    """Cross-attention mass (%) of ``backbone``'s question encoder on target / distractor /
    other image tokens, and each group's share (%) of the image tokens, over the first
    ``max_questions`` ``train`` questions of the embedded data under ``root``."""
    root = Path(root)
    scenes = {
        root / "coco" / s["filepath"] / s["filename"]: s
        for s in read_scenes(root)
        if s["split"] == "train"
    }
    examples = [e for e in load_vqav2(root / "vqav2", "train") if e.image in scenes]
    examples = examples[:max_questions]
    if not examples:
        raise ValueError(f"{root}: no train question with a written scene")
    model = backbone.model.eval()
    device = next(model.parameters()).device
    vision = model.config.vision_config
    grid = vision.image_size // vision.patch_size
    mass = {"target": 0.0, "distractor": 0.0, "other": 0.0}
    area = {"target": 0.0, "distractor": 0.0, "other": 0.0}
    for start in range(0, len(examples), 32):
        batch = examples[start : start + 32]
        pixels = backbone.image_processor(
            [load_image(e.image) for e in batch], return_tensors="pt"
        )["pixel_values"].to(device)
        enc = backbone.tokenizer([e.question for e in batch], padding=True, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        image = model.vision_model(pixel_values=pixels)[0]
        out = model.text_encoder(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            encoder_hidden_states=image,
            output_attentions=True,
            return_dict=True,
        )
        # [B, T, image tokens]: mean over layers and heads
        probs = torch.stack([a.float().mean(1) for a in out.cross_attentions]).mean(0)
        tokens = enc["attention_mask"].float()
        per_q = (probs * tokens[..., None]).sum(1) / tokens.sum(1, keepdim=True)  # [B, 1 + g*g]
        for row, ex in zip(per_q.cpu(), batch):
            targets, distractors = scene_patch_groups(scenes[ex.image], grid)
            patches = row[1:]  # token 0 is the image [CLS]
            t = float(patches[sorted(targets)].sum()) if targets else 0.0
            d = float(patches[sorted(distractors)].sum()) if distractors else 0.0
            mass["target"] += t
            mass["distractor"] += d
            mass["other"] += float(row.sum()) - t - d
            n = grid * grid + 1
            area["target"] += len(targets) / n
            area["distractor"] += len(distractors) / n
            area["other"] += 1 - (len(targets) + len(distractors)) / n
    k = len(examples)
    return {
        "questions": k,
        "mass_percent": {g: 100 * v / k for g, v in mass.items()},
        "area_percent": {g: 100 * v / k for g, v in area.items()},
    }
