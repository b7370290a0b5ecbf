"""Procedural ModelNet-format dataset: real ``.off`` meshes of 10 ModelNet40 classes built from trimesh
primitives with random proportions, parts and rotations, so text prompts stay meaningful with real CLIP weights.

Layout ``root/<class>/{train,test}/<class>_NNNN.off`` (numbering continues from train to test, as in ModelNet).
Meshes are z-up with the floor at z = 0 and the front facing -x, like ModelNet; load them with
``ModelNetOff(root, rotate=True)`` (CLIP2Point's ModelNet rotation) so the renderer sees them upright.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import trimesh
from adapterlab.core.engine import atomic_directory, clean_temp_leftovers
from trimesh.creation import box, cone, cylinder, revolve, torus
from trimesh.transformations import rotation_matrix, translation_matrix

Builder = Callable[[np.random.Generator], trimesh.Trimesh]
_SECTIONS = 24


def _box(extents, center) -> trimesh.Trimesh:
    return box(extents=extents, transform=translation_matrix(center))


def _cyl(radius: float, p0, p1, sections: int = _SECTIONS) -> trimesh.Trimesh:
    return cylinder(radius=radius, segment=np.array([p0, p1], dtype=float), sections=sections)


def _disc(radius: float, height: float, z0: float, xy=(0.0, 0.0)) -> trimesh.Trimesh:
    return _cyl(radius, (xy[0], xy[1], z0), (xy[0], xy[1], z0 + height))


def _shell(outer: np.ndarray, thickness: float) -> trimesh.Trimesh:
    """Revolve a thin-walled vessel from its outer (r, z) profile (bottom centre first, rim last)."""
    inner = outer[::-1].copy()
    inner[:, 0] = np.maximum(inner[:, 0] - thickness, 0.0)
    inner[:, 1] = np.maximum(inner[:, 1], outer[0, 1] + thickness)
    profile = np.concatenate([outer, inner])
    return revolve(profile, sections=32)


def _legs(xs, ys, top: float, radius: float, rng, splay: float = 0.0, square: bool | None = None):
    square = bool(rng.random() < 0.5) if square is None else square
    parts = []
    for x in xs:
        for y in ys:
            if square and splay == 0:
                parts.append(_box((2 * radius, 2 * radius, top), (x, y, top / 2)))
            else:
                parts.append(_cyl(radius, (x * (1 + splay), y * (1 + splay), 0.0), (x, y, top)))
    return parts


def make_table(rng: np.random.Generator) -> trimesh.Trimesh:
    w, d = rng.uniform(1.0, 1.8), rng.uniform(0.55, 1.0)
    t, h = rng.uniform(0.03, 0.07), rng.uniform(0.6, 0.8)
    if rng.random() < 0.25:  # round pedestal table
        r = rng.uniform(0.4, 0.6)
        return trimesh.util.concatenate(
            [
                _disc(r, t, h - t),
                _cyl(rng.uniform(0.04, 0.08), (0, 0, 0), (0, 0, h - t)),
                _disc(rng.uniform(0.2, 0.35), 0.03, 0.0),
            ]
        )
    inset, leg = rng.uniform(0.03, 0.12), rng.uniform(0.025, 0.05)
    xs, ys = (-w / 2 + inset, w / 2 - inset), (-d / 2 + inset, d / 2 - inset)
    parts = [_box((d, w, t), (0, 0, h - t / 2))]
    parts += [
        p.apply_transform(rotation_matrix(np.pi / 2, (0, 0, 1)))
        for p in _legs(xs, ys, h - t, leg, rng)
    ]
    return trimesh.util.concatenate(parts)


def make_chair(rng: np.random.Generator) -> trimesh.Trimesh:
    w, d, t = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.55), rng.uniform(0.04, 0.07)
    h, hb = rng.uniform(0.42, 0.5), rng.uniform(0.35, 0.6)
    leg = rng.uniform(0.018, 0.03)
    parts = [_box((d, w, t), (0, 0, h - t / 2))]
    parts += _legs((-d / 2 + leg, d / 2 - leg), (-w / 2 + leg, w / 2 - leg), h - t, leg, rng)
    back = _box((0.04, w, hb), (0, 0, hb / 2))
    tilt = np.deg2rad(rng.uniform(0, 15))
    back.apply_transform(rotation_matrix(-tilt, (0, 1, 0)))
    back.apply_transform(translation_matrix((d / 2 - 0.02, 0, h)))
    parts.append(back)
    if rng.random() < 0.3:  # armrests
        for y in (-w / 2, w / 2):
            parts.append(_box((d, 0.04, 0.03), (0, y, h + 0.22)))
            parts.append(_box((0.03, 0.03, 0.22), (-d / 2 + 0.03, y, h + 0.11)))
    return trimesh.util.concatenate(parts)


def make_stool(rng: np.random.Generator) -> trimesh.Trimesh:
    h, t = rng.uniform(0.5, 0.78), rng.uniform(0.03, 0.06)
    n_legs = int(rng.choice([3, 4]))
    r = rng.uniform(0.15, 0.22)
    parts = [
        _disc(r, t, h - t) if rng.random() < 0.7 else _box((2 * r, 2 * r, t), (0, 0, h - t / 2))
    ]
    ang = np.linspace(0, 2 * np.pi, n_legs, endpoint=False) + rng.uniform(0, np.pi)
    rl, splay = 0.75 * r, rng.uniform(0.1, 0.4)
    lr = rng.uniform(0.012, 0.022)
    for a in ang:
        top = (rl * np.cos(a), rl * np.sin(a), h - t)
        foot = (rl * (1 + splay) * np.cos(a), rl * (1 + splay) * np.sin(a), 0.0)
        parts.append(_cyl(lr, foot, top))
    if rng.random() < 0.5:  # footrest ring
        parts.append(torus(rl * (1 + splay / 2), lr, 24, 8).apply_translation((0, 0, h * 0.35)))
    return trimesh.util.concatenate(parts)


def make_bench(rng: np.random.Generator) -> trimesh.Trimesh:
    length, d = rng.uniform(1.2, 2.0), rng.uniform(0.3, 0.45)
    t, h = rng.uniform(0.04, 0.07), rng.uniform(0.4, 0.48)
    parts = [_box((d, length, t), (0, 0, h - t / 2))]
    if rng.random() < 0.5:  # slab legs
        for y in (-length / 2 + 0.1, length / 2 - 0.1):
            parts.append(_box((d * 0.9, 0.05, h - t), (0, y, (h - t) / 2)))
    else:
        leg = rng.uniform(0.02, 0.035)
        parts += _legs(
            (-d / 2 + leg, d / 2 - leg), (-length / 2 + 0.08, length / 2 - 0.08), h - t, leg, rng
        )
    if rng.random() < 0.4:  # backrest
        hb = rng.uniform(0.25, 0.4)
        parts.append(_box((0.04, length, hb * 0.6), (d / 2, 0, h + hb * 0.55)))
        for y in (-length / 2 + 0.1, length / 2 - 0.1):
            parts.append(_box((0.04, 0.04, hb), (d / 2, y, h + hb / 2)))
    return trimesh.util.concatenate(parts)


def make_bottle(rng: np.random.Generator) -> trimesh.Trimesh:
    radius, body = rng.uniform(0.08, 0.14), rng.uniform(0.25, 0.42)
    shoulder, rn = rng.uniform(0.05, 0.12), rng.uniform(0.022, 0.04)
    neck = rng.uniform(0.06, 0.12)
    rc, hc = rn * 1.15, rng.uniform(0.02, 0.04)
    top = body + shoulder + neck
    profile = np.array(
        [
            (0, 0),
            (radius, 0),
            (radius, body),
            (0.5 * (radius + rn), body + 0.7 * shoulder),
            (rn, body + shoulder),
            (rn, top),
            (rc, top),
            (rc, top + hc),
            (0, top + hc),
        ]
    )
    return revolve(profile, sections=32)


def make_bowl(rng: np.random.Generator) -> trimesh.Trimesh:
    rb, depth = rng.uniform(0.15, 0.3), rng.uniform(0.35, 0.6)
    ang = np.linspace(0, np.pi / 2, 10)
    foot = rng.uniform(0.3, 0.5) * rb
    outer = np.stack([foot + (rb - foot) * np.sin(ang), rb * depth * (1 - np.cos(ang))], axis=1)
    outer = np.concatenate([[[0.0, 0.0]], outer])
    return _shell(outer, rng.uniform(0.008, 0.02))


def make_cup(rng: np.random.Generator) -> trimesh.Trimesh:
    r, h = rng.uniform(0.04, 0.06), rng.uniform(0.08, 0.13)
    taper = rng.uniform(0.75, 1.0)
    outer = np.array([(0, 0), (r * taper, 0), (r, h)])
    parts = [_shell(outer, rng.uniform(0.004, 0.007))]
    if rng.random() < 0.85:  # handle in the x-z plane on the +y side
        major = rng.uniform(0.28, 0.38) * h
        handle = torus(major, rng.uniform(0.1, 0.16) * major, 24, 8)
        handle.apply_transform(rotation_matrix(np.pi / 2, (1, 0, 0)))
        handle.apply_translation((0, r * (0.5 + 0.5 * taper) + 0.5 * major, h * 0.55))
        parts.append(handle)
    return trimesh.util.concatenate(parts)


def make_lamp(rng: np.random.Generator) -> trimesh.Trimesh:
    base_r, base_h = rng.uniform(0.1, 0.16), rng.uniform(0.02, 0.04)
    pole_h, pole_r = rng.uniform(0.4, 0.7), rng.uniform(0.01, 0.016)
    parts = [_disc(base_r, base_h, 0.0)]
    rb, rt, hs = rng.uniform(0.12, 0.2), rng.uniform(0.05, 0.1), rng.uniform(0.12, 0.2)
    shade = _shell(np.array([(0.0, 0.0), (rt, 0.0), (rb, -hs)])[[0, 1, 2]], 0.006)
    if rng.random() < 0.6:  # floor/table lamp: pole and a shade on top
        parts.append(_cyl(pole_r, (0, 0, base_h), (0, 0, base_h + pole_h)))
        shade.apply_translation((0, 0, base_h + pole_h + 0.6 * hs))
    else:  # desk lamp: bent arm, shade tilted down
        elbow = np.array([rng.uniform(-0.15, 0.0), 0.0, base_h + pole_h * 0.6])
        tip = elbow + np.array([rng.uniform(0.2, 0.35), 0.0, rng.uniform(0.05, 0.2)])
        parts += [_cyl(pole_r, (0, 0, base_h), elbow), _cyl(pole_r, elbow, tip)]
        shade.apply_transform(rotation_matrix(np.deg2rad(rng.uniform(20, 50)), (0, 1, 0)))
        shade.apply_translation(tip + (0.0, 0.0, -0.02))
    parts.append(shade)
    return trimesh.util.concatenate(parts)


def make_cone(rng: np.random.Generator) -> trimesh.Trimesh:
    r, h = rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.8)
    parts = []
    z0 = 0.0
    if rng.random() < 0.5:  # traffic-cone base plate
        s, z0 = 2.4 * r, rng.uniform(0.02, 0.04)
        parts.append(_box((s, s, z0), (0, 0, z0 / 2)))
    parts.append(cone(radius=r, height=h, sections=32).apply_translation((0, 0, z0)))
    return trimesh.util.concatenate(parts)


def make_monitor(rng: np.random.Generator) -> trimesh.Trimesh:
    w = rng.uniform(0.45, 0.7)
    h, t = w * rng.uniform(0.5, 0.68), rng.uniform(0.02, 0.05)
    neck_h = rng.uniform(0.08, 0.18)
    parts = [_box((t, w, h), (0, 0, neck_h + h / 2))]
    parts.append(
        _box(
            (0.03, rng.uniform(0.04, 0.08), neck_h + h / 3),
            (t / 2 + 0.015, 0, (neck_h + h / 3) / 2),
        )
    )
    if rng.random() < 0.5:
        parts.append(_box((rng.uniform(0.15, 0.25), rng.uniform(0.2, 0.3), 0.02), (0.03, 0, 0.01)))
    else:
        parts.append(_disc(rng.uniform(0.1, 0.15), 0.02, 0.0, xy=(0.03, 0.0)))
    return trimesh.util.concatenate(parts)


#: The embedded classes (all ModelNet40 names) and their builders.
BUILDERS: dict[str, Builder] = {
    "bench": make_bench,
    "bottle": make_bottle,
    "bowl": make_bowl,
    "chair": make_chair,
    "cone": make_cone,
    "cup": make_cup,
    "lamp": make_lamp,
    "monitor": make_monitor,
    "stool": make_stool,
    "table": make_table,
}
EMBEDDED_CLASSES: tuple[str, ...] = tuple(sorted(BUILDERS))


def make_shape(name: str, rng: np.random.Generator, max_yaw_deg: float = 30.0) -> trimesh.Trimesh:
    """One random mesh of class ``name``: built in z-up, then turned by a random yaw (and a small tilt)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown embedded class {name!r}; choose from {EMBEDDED_CLASSES}")
    mesh = BUILDERS[name](rng)
    mesh.apply_transform(
        rotation_matrix(np.deg2rad(rng.uniform(-max_yaw_deg, max_yaw_deg)), (0, 0, 1))
    )
    tilt_axis = (np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a), 0.0)
    mesh.apply_transform(rotation_matrix(np.deg2rad(rng.uniform(0, 4)), tilt_axis))
    mesh.apply_scale(rng.uniform(0.8, 1.25))
    return mesh


def generate_embedded_modelnet(
    root: str | Path,
    per_class_train: int = 20,
    per_class_test: int = 10,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the embedded ModelNet-format dataset to ``root`` and return ``root``.

    Deterministic for a given seed. If ``root`` already holds a complete dataset made with the same settings it
    is reused; a different one raises unless ``overwrite``. Written to a temporary folder and swapped in
    (the core's ``atomic_directory``: permissions follow the umask), so an interrupted run leaves nothing
    half-written, and the temporary folder of a killed run is removed by the next call.
    """
    root = Path(root)
    names = tuple(classes) if classes is not None else EMBEDDED_CLASSES
    unknown = [c for c in names if c not in BUILDERS]
    if unknown or not names:
        raise ValueError(f"unknown embedded classes {unknown}; choose from {EMBEDDED_CLASSES}")
    if per_class_train < 1 or per_class_test < 1:
        raise ValueError("per_class_train and per_class_test must be >= 1")
    meta = {
        "generator": "adapterlab.pointclip.data.embedded",
        "version": 1,
        "classes": list(names),
        "per_class_train": per_class_train,
        "per_class_test": per_class_test,
        "seed": seed,
    }
    marker = root / "embedded.json"
    if root.exists():
        if marker.is_file() and json.loads(marker.read_text()) == meta:
            return root
        if not overwrite:
            raise FileExistsError(
                f"{root} exists and is not an embedded dataset made with these settings; "
                "pass overwrite=True (or another folder)"
            )
    # a killed run's temporary folder (".<name>.tmp-*") is removed before a new one is made
    clean_temp_leftovers(root.parent, root.name)

    def write(tmp: Path) -> None:
        for ci, name in enumerate(names):
            rng = np.random.default_rng([seed, ci])
            for i in range(per_class_train + per_class_test):
                split = "train" if i < per_class_train else "test"
                mesh = make_shape(name, rng)
                folder = tmp / name / split
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}_{i + 1:04d}.off").write_text(
                    trimesh.exchange.off.export_off(mesh, digits=6)
                )
        (tmp / "embedded.json").write_text(json.dumps(meta, indent=2))

    # the core's atomic folder swap: permissions follow the umask, nothing half-written stays
    atomic_directory(root, write)
    return root
