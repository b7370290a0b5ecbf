"""Depth renderer (issue section 1): geometry, values, batching, determinism and input errors."""

from __future__ import annotations

import math

import pytest
import torch
from adapterlab.pointclip.render import (
    CLIP_MEAN,
    CLIP_STD,
    VIEWS_6,
    VIEWS_10,
    DepthRenderConfig,
    DepthRenderer,
    look_at_axes,
    render_reference,
)
from adapterlab.pointclip.render.depth import REALISTIC_CONV, gaussian_kernel

torch.set_num_threads(1)


def unit_cloud(b: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(b, n, 3, generator=g)
    p = p / p.norm(dim=-1, keepdim=True) * torch.rand(b, n, 1, generator=g) ** 0.3
    return p / p.norm(dim=-1).amax(dim=1)[:, None, None]


def cube_surface(n: int = 20000, seed: int = 0) -> torch.Tensor:
    """Points on the surface of the axis-aligned cube [-a, a]^3 with a = 1/sqrt(3) (unit sphere)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(n, 3, generator=g) * 2 - 1
    face = torch.randint(3, (n,), generator=g)
    sign = torch.randint(2, (n,), generator=g).float() * 2 - 1
    p[torch.arange(n), face] = sign
    return (p / math.sqrt(3))[None]


def pixel_centre(i: int, size: int) -> float:
    """NDC coordinate (right/up positive) of the centre of column i (or of row size-1-i)."""
    return (2 * i + 1) / size - 1


# ----------------------------------------------------------------------------- camera


def test_camera_axes_match_pytorch3d_conventions():
    axes, pos = look_at_axes(VIEWS_10)
    eye = torch.eye(3)
    for a in axes:
        assert torch.allclose(a @ a.T, eye, atol=1e-5)
        assert torch.det(torch.stack([-a[0], a[1], a[2]])) == pytest.approx(
            1.0, abs=1e-5
        )  # PyTorch3D R
    front = axes[0]
    assert torch.allclose(front, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, -1]]), atol=1e-6)
    # top view: PyTorch3D's fallback for up || view direction gives image-up = world +Z, image-right = -X
    top = axes[1]
    assert torch.allclose(top, torch.tensor([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), atol=1e-5)
    assert torch.allclose(pos[8], torch.tensor([-1.0, 0, 0]), atol=1e-6)  # azim -90: camera on -X
    assert torch.allclose(-pos, axes[:, 2], atol=1e-5)  # the camera looks at the origin


# ----------------------------------------------------------------------------- clip2point values


def test_clip2point_points_land_on_expected_pixels_with_expected_values():
    s = 64
    r = DepthRenderer(mode="clip2point", num_views=10, image_size=s, normalize=False)
    ca, ra, cb, rb = 40, 20, 10, 50  # (column, row) of points A and B
    a = [pixel_centre(ca, s), -pixel_centre(ra, s), 0.3]
    b = [pixel_centre(cb, s), -pixel_centre(rb, s), -0.5]
    img = r(torch.tensor([[a, b]]), views=[0])[0, 0, 0]
    # front camera at +Z, distance 1: depth = 1 - z. A: 0.7, B: 1.5; min 0.7, max 1.5
    assert img[ra, ca].item() == pytest.approx(0.0, abs=1e-6)
    assert img[rb, cb].item() == pytest.approx((1.5 - 0.7) / 1.5 * 200 / 255, abs=1e-6)
    # radius 0.02 NDC = 0.64 px at 64 px: only the two centre pixels are covered, the rest is background 1
    fg = img != 1.0
    assert fg.sum().item() == 2 and fg[ra, ca] and fg[rb, cb]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_clip2point_nearest_point_wins(order):
    s = 64
    r = DepthRenderer(mode="clip2point", image_size=s, normalize=False)
    c, row = 10, 50
    far_pt = [pixel_centre(c, s), -pixel_centre(row, s), -0.5]  # depth 1.5, hidden
    near_pt = [pixel_centre(c, s), -pixel_centre(row, s), 0.2]  # depth 0.8, same pixel
    other = [pixel_centre(40, s), -pixel_centre(20, s), 0.3]  # depth 0.7 = image min
    pts = torch.tensor([[far_pt, near_pt, other][i] for i in order])[None]
    img = r(pts, views=[0])[0, 0, 0]
    # max over the image is now 0.8 (the 1.5 point is hidden): (0.8 - 0.7) / 0.8 * 200/255
    assert img[row, c].item() == pytest.approx(0.1 / 0.8 * 200 / 255, abs=1e-6)


def test_clip2point_splat_is_a_disk_of_radius_0_02_ndc():
    s = 224
    r = DepthRenderer(mode="clip2point", image_size=s, normalize=False)
    pts = torch.tensor([[[pixel_centre(100, s), -pixel_centre(60, s), 0.0]]])
    img = r(pts, views=[0])[0, 0, 0]
    rad_px = 0.02 * s / 2
    expected = sum(1 for i in range(-4, 5) for j in range(-4, 5) if i * i + j * j < rad_px**2)
    fg = torch.nonzero(img != 1.0)
    assert len(fg) == expected == 21
    assert fg.float().mean(0).tolist() == pytest.approx([60.0, 100.0])


def test_clip2point_clip_normalisation_and_background():
    s = 32
    pts = unit_cloud(2, 300)
    raw = DepthRenderer(mode="clip2point", image_size=s, normalize=False)(pts)
    norm = DepthRenderer(mode="clip2point", image_size=s)(pts)
    mean = torch.tensor(CLIP_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 1, 3, 1, 1)
    assert torch.allclose(norm, (raw - mean) / std, atol=1e-5)
    assert torch.equal(raw[:, :, 0], raw[:, :, 1]) and torch.equal(raw[:, :, 1], raw[:, :, 2])
    assert raw.min() >= 0 and raw.max() <= 1.0
    fg = raw[:, :, 0] < 1.0
    assert fg.any() and (~fg).any()
    assert (
        raw[:, :, 0][fg].max() <= 200 / 255 + 1e-6
    )  # foreground never reaches the white background


def test_distance_jitter_zooms():
    s = 48
    pts = cube_surface(3000).expand(2, -1, -1)
    r = DepthRenderer(mode="clip2point", image_size=s, normalize=False, jitter=0.1)
    img = r(pts, views=[0], dist_scale=torch.tensor([0.9, 1.1]))[:, 0, 0]
    area = (img < 1).sum(dim=(-1, -2))
    assert area[0] > area[1]  # closer camera (points scaled by 1/dist) -> bigger object
    scales = r.sample_dist_scale(1000, torch.Generator().manual_seed(0), "cpu")
    assert scales.min() >= 0.9 and scales.max() <= 1.1 and scales.std() > 0.03
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(r(pts, generator=g1), r(pts, generator=g2))


# ----------------------------------------------------------------------------- pointclip values


def test_pointclip_pixel_value_is_harmonic_mean_of_depths():
    s = 40
    r = DepthRenderer(
        mode="pointclip", num_views=10, image_size=s, normalize=False
    )  # few-shot: 224-style, no resize
    # two points on the optical axis of view 0 (x = y = 0) share the centre pixel; TRANS -1.4 -> depth z + 1.4
    pts = torch.tensor([[[0.0, 0.0, 0.2], [0.0, 0.0, -0.3], [0.3, -0.2, 0.1]]])
    img = r(pts, views=[0])[0, 0, 0]
    c = math.ceil(s / 2 - 0.5)
    assert img[c, c].item() == pytest.approx(2 / (1 / 1.6 + 1 / 1.1), rel=1e-5)
    # view 0 = Rz(pi/2): (x, y, z) -> (-y, x, z); rows follow x', columns y'
    z = 0.1 + 1.4
    row = math.ceil((0.2 / z + 1) * s / 2 - 0.5)
    col = math.ceil((0.3 / z + 1) * s / 2 - 0.5)
    assert img[row, col].item() == pytest.approx(z, rel=1e-5)
    assert (img != 0).sum().item() == 2  # background 0, one pixel per point


def test_pointclip_zero_shot_renders_at_128_and_upsamples():
    cfg = DepthRenderConfig(mode="pointclip", num_views=6)
    assert cfg.internal_size == 128 and cfg.image_size == 224 and not cfg.clip_normalize
    out = DepthRenderer(cfg)(unit_cloud(1, 200))
    assert out.shape == (1, 6, 3, 224, 224)


# ----------------------------------------------------------------------------- realistic


def test_realistic_background_white_foreground_darker():
    r = DepthRenderer(mode="realistic", image_size=64)
    img = r(unit_cloud(1, 500))[0, :, 0]
    assert img.shape == (10, 64, 64)
    assert torch.allclose(img[:, 0, 0], torch.ones(10))  # corners: background 1
    assert (
        img.min() >= 0 and img.amin(dim=(-1, -2)).max() < 0.2
    )  # darkest pixel = image max, inverted
    k = gaussian_kernel()
    assert k.sum().item() == pytest.approx(1.0) and k.shape[-1] == REALISTIC_CONV


# ----------------------------------------------------------------------------- geometry: cube


@pytest.mark.parametrize(
    ("mode", "num_views", "top"), [("clip2point", 10, 1), ("clip2point", 6, 4), ("pointclip", 6, 4)]
)
def test_top_view_of_cube_is_centred_square(mode, num_views, top):
    s = 64
    r = DepthRenderer(mode=mode, num_views=num_views, image_size=s, normalize=False)
    img = r(cube_surface(), views=[top])[0, 0, 0]
    bg = img[0, 0]
    mask = img != bg
    rows, cols = torch.nonzero(mask, as_tuple=True)
    r0, r1, c0, c1 = rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()
    assert (r0 + r1) / 2 == pytest.approx((s - 1) / 2, abs=1.0)
    assert (c0 + c1) / 2 == pytest.approx((s - 1) / 2, abs=1.0)
    assert r1 - r0 == pytest.approx(c1 - c0, abs=1)  # square, not a rectangle
    fill = mask[r0 : r1 + 1, c0 : c1 + 1].float().mean().item()
    assert fill > 0.9  # a filled square (a disk would fill ~0.785)
    if mode == "clip2point":  # orthographic: half-size 1/sqrt(3) in NDC (+ the splat radius)
        assert (c1 - c0 + 1) / s == pytest.approx(1 / math.sqrt(3), abs=0.06)


def test_realistic_top_view_of_cube_is_centred():
    s = 64
    img = DepthRenderer(mode="realistic", image_size=s)(cube_surface(), views=[8])[0, 0, 0]
    rows, cols = torch.nonzero(img < 1.0, as_tuple=True)
    assert (rows.min() + rows.max()).item() / 2 == pytest.approx((s - 1) / 2, abs=2.0)
    assert (cols.min() + cols.max()).item() / 2 == pytest.approx((s - 1) / 2, abs=2.0)


# ----------------------------------------------------------------------------- batching, determinism


@pytest.mark.parametrize(
    ("mode", "num_views"),
    [("clip2point", 10), ("clip2point", 6), ("pointclip", 6), ("pointclip", 10), ("realistic", 10)],
)
def test_batched_equals_per_cloud_and_loop_reference(mode, num_views):
    s = 48
    cfg = DepthRenderConfig(mode=mode, num_views=num_views, image_size=s)
    r = DepthRenderer(cfg)
    pts = unit_cloud(3, 400, seed=1)
    batched = r(pts)
    assert batched.shape == (3, num_views, 3, s, s)
    for i in range(3):
        assert torch.allclose(batched[i], r(pts[i : i + 1])[0], atol=1e-5)
    ref = render_reference(pts, cfg)
    differ = ((batched - ref).abs() > 1e-4).float().mean().item()
    assert differ <= 1e-4  # float rounding can flip a splat on a pixel boundary, nothing more


def test_view_subsets_match_full_render():
    pts = unit_cloud(2, 300)
    r = DepthRenderer(mode="clip2point", image_size=32)
    full = r(pts)
    assert torch.allclose(r(pts, views=[3, 7]), full[:, [3, 7]], atol=1e-6)
    per_cloud = r(pts, views=torch.tensor([[2], [9]]))
    assert per_cloud.shape == (2, 1, 3, 32, 32)
    assert torch.allclose(per_cloud[0, 0], full[0, 2], atol=1e-6)
    assert torch.allclose(per_cloud[1, 0], full[1, 9], atol=1e-6)


@pytest.mark.parametrize("mode", ["clip2point", "pointclip", "realistic"])
def test_output_is_deterministic(mode):
    pts = unit_cloud(2, 500)
    r = DepthRenderer(mode=mode, num_views=10, image_size=32)
    assert torch.equal(r(pts), r(pts))
    assert len(list(r.parameters())) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["clip2point", "pointclip", "realistic"])
def test_cuda_matches_cpu(mode):
    pts = unit_cloud(2, 500)
    r = DepthRenderer(mode=mode, num_views=10, image_size=64)
    cpu = r(pts)
    gpu = r.to("cuda")(pts.cuda()).cpu()
    assert ((cpu - gpu).abs() > 1e-3).float().mean() < 1e-3


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("points", "match"),
    [
        (torch.zeros(1, 0, 3), "empty"),
        (torch.zeros(0, 5, 3), "empty"),
        (torch.zeros(5, 3), r"\[B, N, 3\]"),
        (torch.zeros(1, 5, 2), r"\[B, N, 3\]"),
        (torch.tensor([[[0.0, 0.0, float("nan")]]]), "NaN or inf"),
        (torch.tensor([[[0.0, 0.0, 0.0]], [[float("inf"), 0.0, 0.0]]]), r"NaN or inf .*\[1\]"),
        (torch.zeros(1, 5, 3, dtype=torch.long), "floating point"),
    ],
)
def test_bad_points_raise_clear_errors(points, match):
    r = DepthRenderer(mode="clip2point", image_size=16)
    with pytest.raises(ValueError, match=match):
        r(points)


def test_bad_config_and_views_raise():
    with pytest.raises(ValueError, match="num_views"):
        DepthRenderConfig(mode="clip2point", num_views=7)
    with pytest.raises(ValueError, match="num_views"):
        DepthRenderConfig(mode="realistic", num_views=6)
    with pytest.raises(ValueError, match="jitter"):
        DepthRenderConfig(mode="pointclip", num_views=6, jitter=0.1)
    with pytest.raises(ValueError, match="mode"):
        DepthRenderConfig(mode="pytorch3d")
    r = DepthRenderer(mode="clip2point", num_views=6, image_size=16)
    with pytest.raises(ValueError, match="view indices"):
        r(unit_cloud(1, 10), views=[6])
    assert len(VIEWS_6) == 6 and len(VIEWS_10) == 10


def test_pointclip_baselines_are_not_clip_normalised():
    """PointCLIP V1/V2 fed raw depth maps to CLIP: V1 background 0, V2 background 1.0."""
    from adapterlab.pointclip.pipeline import make_depth_renderer, published_views

    torch.manual_seed(0)
    pts = torch.rand(2, 512, 3) * 0.2 - 0.1
    v1 = make_depth_renderer(32, published_views("pointclip", "zeroshot"), "pointclip")(pts)
    assert v1.shape[1] == 6 and float(v1[..., 0, 0].abs().max()) == 0.0
    sparse = pts[:, :8]  # leaves most pixels empty
    v2 = make_depth_renderer(32, published_views("realistic", "zeroshot"), "realistic")(sparse)
    assert float(v2.amax()) == pytest.approx(1.0) and float(v2.amin()) >= 0.0
    c2p = make_depth_renderer(32, published_views("clip2point", "zeroshot"), "clip2point")(pts)
    assert c2p.shape[1] == 6 and float(c2p[..., 0, 0].min()) > 1.5  # white after CLIP mean/std
