"""Image-depth pre-training through the core engine on a tiny embedded pairs folder."""

import json

import pytest
import torch
from adapterlab.pointclip import (
    Clip2PointPretrainModel,
    PretrainConfig,
    load_depth_encoder,
    retrieval_metrics,
    run_pretraining,
)
from adapterlab.pointclip.data import generate_embedded_modelnet
from adapterlab.pointclip.models.clip import load_clip
from adapterlab.pointclip.pairs import ImageDepthPairs, render_pairs

SIZE = 32


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c2p_pretrain")
    data = generate_embedded_modelnet(
        root / "mn", per_class_train=8, per_class_test=2, classes=("chair", "table", "bowl")
    )
    render_pairs(data, root / "pairs", image_size=SIZE, num_points=512, progress=False)
    return root / "pairs"


@pytest.fixture()
def clip():
    torch.manual_seed(0)
    return load_clip("tiny", "none", device="cpu", image_size=SIZE)


def test_retrieval_metrics_formula():
    feats = torch.eye(4)
    assert retrieval_metrics(feats, feats)["retrieval_top1"] == 1.0
    assert retrieval_metrics(feats, feats.roll(1, 0))["retrieval_top1"] == 0.0
    groups = torch.tensor([0, 0, 1, 1])
    m = retrieval_metrics(feats, feats[[1, 0, 2, 3]], groups)
    assert m["retrieval_top1"] == 0.5 and m["retrieval_chance"] == 0.5


def test_pretraining_loss_decreases_on_a_fixed_batch(pairs_root, clip):
    ds = ImageDepthPairs(pairs_root, num_points=256, split="train", views="random", seed=0)
    items = [ds[i] for i in range(8)]
    points = torch.stack([it["points"] for it in items])
    view = torch.stack([it["view"][0] for it in items])
    with torch.no_grad():
        image = clip.visual(torch.stack([it["images"][0] for it in items]))
    model = Clip2PointPretrainModel(clip.visual, SIZE, jitter=0.0)
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if "conv1" not in n], lr=1e-3)
    losses = []
    for _ in range(25):
        out = model(points, view, image)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss_image"]))
    assert losses[-1] < 0.5 * losses[0]


def test_run_pretraining_full(pairs_root, clip, tmp_path):
    image_before = {k: v.clone() for k, v in clip.visual.state_dict().items()}
    cfg = PretrainConfig(
        epochs=2, batch_size=8, num_points=256, lr=1e-3, freeze_patch_embed=True, eval_batch_size=64
    )
    res = run_pretraining(clip, pairs_root, tmp_path / "pt", cfg, progress=False)
    # the frozen image encoder is untouched; the depth encoder (but not its patch embedding) moved
    for k, v in clip.visual.state_dict().items():
        assert torch.equal(v, image_before[k]), k
    depth = res.model.depth_encoder.state_dict()
    selected = load_depth_encoder(clip, res.run_dir / "best").state_dict()  # the one best
    assert torch.equal(selected["conv1.weight"], image_before["conv1.weight"])
    assert torch.equal(selected["proj"], depth["proj"])
    assert res.best_step == 0 or not torch.equal(selected["proj"], image_before["proj"])
    # artefacts: engine run dir with the best adapter (safetensors) + the plain encoder file
    assert (res.run_dir / "best" / "adapter.safetensors").is_file()
    loaded = load_depth_encoder(clip, res.encoder_path)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, depth[k]), k
    from_adapter = load_depth_encoder(clip, res.adapter_dir)
    for k, v in from_adapter.state_dict().items():
        assert torch.equal(v, depth[k]), k
    # model selection: the best *validation* evaluation, step 0 (untrained) included
    records = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    best = max(evals, key=lambda r: r["retrieval_top1"])
    assert len({r["retrieval_top1"] for r in evals} | {res.untrained_val["retrieval_top1"]}) > 1
    if res.untrained_val["retrieval_top1"] > best["retrieval_top1"]:
        assert res.best_step == 0
        for k, v in image_before.items():
            assert torch.equal(depth[k], v), k
    else:
        assert res.best_step == best["step"]
        assert float(res.model.criterion.w.detach()) != 1.0
    tests = [r for r in records if r["split"] == "test"]
    assert len(tests) == 1 and records[-1]["split"] == "test"
    assert set(res.untrained) >= {"retrieval_top1", "retrieval_chance", "retrieval_top1_same_view"}
    assert res.test["retrieval_chance"] == pytest.approx(1 / 6)  # 3 classes x 2 test meshes


def test_run_pretraining_with_lora_trains_only_the_adapter(pairs_root, clip, tmp_path):
    cfg = PretrainConfig(adapter="lora", epochs=1, batch_size=8, num_points=256, lr=1e-3)
    res = run_pretraining(clip, pairs_root, tmp_path / "lora", cfg, progress=False)
    trainable = [n for n, p in res.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n or n == "criterion.w" for n in trainable)
    assert res.encoder_path is not None and res.encoder_path.is_file()  # merged LoRA


def test_fp32_drop_last_and_no_png_decode(pairs_root, clip, tmp_path, monkeypatch):
    """fp32 by default (the original), drop_last (a one-pair last batch would crash NT-Xent),
    and training items never decode the stored PNGs (the image side is a cached feature)."""
    import yaml
    from adapterlab.pointclip import FewShotConfig, ImageFeatureTable, PretrainDataset

    assert PretrainConfig().mixed_precision == "no" and FewShotConfig().mixed_precision == "no"
    ds = ImageDepthPairs(pairs_root, num_points=256, split="train", views="random", seed=0)
    n = len(ds)
    cfg = PretrainConfig(epochs=1, batch_size=n - 1, num_points=256, lr=1e-4, eval_batch_size=64)
    res = run_pretraining(clip, pairs_root, tmp_path / "dl", cfg, progress=False)  # last batch: 1
    saved = yaml.safe_load((res.run_dir / "config.yaml").read_text())
    assert saved["train"]["drop_last"] is True and saved["train"]["mixed_precision"] == "no"
    table = ImageFeatureTable(ds.ids, torch.zeros(n, 10, 4))

    def no_png(*args, **kwargs):
        raise AssertionError("PNG decoded")

    monkeypatch.setattr(ImageDepthPairs, "_image", no_png)
    item = PretrainDataset(ds, table)[0]
    assert item["points"].shape == (256, 3)


def test_warm_restarts_move_the_learning_rate(tmp_path):
    """For non-tiny models lr was 1e-5 and the restarts' floor min_lr was 1e-5 too: the schedule
    was flat. The floor now keeps the original's ratio (eta_min 1e-5 at peak 0.006), and the
    engine's scheduler, built from the settings pre-training uses, follows SGDR exactly:
    linear warm-up, then cosine from the peak down to the floor in every period, restarting."""
    import math

    from adapterlab.core.engine import build_scheduler
    from adapterlab.pointclip import preset_pretrain_config
    from adapterlab.pointclip.train import pretrain_train_config

    cfg = preset_pretrain_config("ViT-B-32", "openai", epochs=10)
    steps_per_epoch = 5  # 50 steps: warm-up 5, period max(2 epochs, 20 steps) = 20
    tc = pretrain_train_config(cfg, steps_per_epoch, tmp_path)
    assert (tc.scheduler, tc.warmup_steps, tc.restart_period) == ("cosine_restarts", 5, 20)
    peak, floor = cfg.lr, cfg.lr * 1e-5 / 0.006
    assert tc.lr == peak == 1e-5 and tc.min_lr == pytest.approx(floor)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [param], "lr": peak}])
    sched = build_scheduler(opt, tc, steps_per_epoch)
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for t, lr in enumerate(lrs):
        if t < 5:
            want = peak * (t + 1) / 5
        else:
            want = floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * ((t - 5) % 20) / 20))
        assert lr == pytest.approx(want, rel=1e-6), t
    assert lrs[5] == pytest.approx(peak) and lrs[25] == pytest.approx(peak)  # restarts
    assert lrs[24] < 0.01 * peak and lrs[15] == pytest.approx((peak + floor) / 2)
    # the tiny preset's plain cosine still anneals to 0
    tiny = preset_pretrain_config("tiny", "none")
    assert tiny.scheduler == "cosine" and tiny.schedule_min_lr() == 0.0
