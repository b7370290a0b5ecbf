"""VL-Adapter's multi-task comparison on BLIP: task routing per batch, round-robin mixing, the
trainable share, learning and save/load of a multi-task run, ``--preset paper``, bad input."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from adapterlab.core import load_adapter, set_task_ids, trainable_summary
from adapterlab.vl.cli import main
from adapterlab.vl.models import tiny_backbone, vqa_from_captioner
from adapterlab.vl.multitask import (
    MultiTaskConfig,
    TaskBatches,
    apply_mt_method,
    method_config,
    round_robin,
)
from adapterlab.vl.multitask.methods import layer_norm_names
from adapterlab.vl.multitask.pipeline import run_multitask
from adapterlab.vl.multitask.train import (
    MTJob,
    evaluate_multitask,
    make_mt_loss,
    multitask_data,
    train_multitask,
)
from adapterlab.vl.task import collate

WORDS = ["a red circle left of a blue square", "what colour is the circle", "yes no 1 2 3"]


@pytest.fixture()
def tiny_vqa(tmp_path):
    def make():
        torch.manual_seed(0)
        return vqa_from_captioner(tiny_backbone("caption", WORDS, tmp_path / "tok", seed=0))

    return make


def _decoder_logits(model, task: int) -> torch.Tensor:
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 48, 48)
    ids = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 10]])
    set_task_ids(model, task)
    with torch.no_grad():
        image = model.vision_model(pixel_values=pixels)[0]
        q = model.text_encoder(input_ids=ids, encoder_hidden_states=image)[0]
        return model.text_decoder(input_ids=ids, encoder_hidden_states=q).logits


def _randomise_adapters(model) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.2)


@pytest.mark.parametrize(
    ("method", "differ"),
    [("per_task", True), ("half_shared", True), ("shared", False), ("hyperformer", True)],
)
def test_each_batch_takes_its_task_adapter(tiny_vqa, method: str, differ: bool) -> None:
    model = tiny_vqa().model
    apply_mt_method(model, method, n_tasks=2)
    _randomise_adapters(model)  # fresh adapters are the identity for every task
    a, b = _decoder_logits(model, 0), _decoder_logits(model, 1)
    assert not torch.allclose(a, b) if differ else torch.equal(a, b)
    assert torch.equal(a, _decoder_logits(model, 0))  # deterministic per task


def test_a_task_batch_trains_only_its_own_adapter(tiny_vqa) -> None:
    bb = tiny_vqa()
    model = bb.model
    apply_mt_method(model, "per_task", n_tasks=2, train_layer_norms=False)
    _randomise_adapters(model)
    item = {"pixel_values": torch.randn(3, 48, 48), "target": [bb.bos_id, 5, 6, bb.sep_id],
            "index": 0, "split": 0}  # fmt: skip
    batch = collate([item, item], pad_id=bb.pad_id)
    batch["task"] = torch.tensor([1, 1])  # a caption batch
    make_mt_loss(model)(model, batch).backward()
    ups = [m for m in model.modules() if type(m).__name__ == "MultiTaskAdapter"]
    assert len(ups) == 12  # self-, cross-attention and FFN of 2 + 2 text layers
    dec = [m for name, m in model.named_modules() if name.startswith("text_decoder")
           and type(m).__name__ == "MultiTaskAdapter"]  # fmt: skip
    for m in dec:
        assert m.up_weight.grad[0].abs().sum() == 0 and m.up_weight.grad[1].abs().sum() > 0
    batch["task"] = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="one task"):
        make_mt_loss(model)(model, batch)


def test_hyperformer_generates_other_weights_for_each_task(tiny_vqa) -> None:
    model = tiny_vqa().model
    apply_mt_method(model, "hyperformer", n_tasks=2, hyper=(16, 16, 8))
    nets = [m for m in model.modules() if type(m).__name__ == "HyperNetwork"]
    assert len(nets) == 1  # one generator serves every position and both tasks
    net = nets[0]
    w = net.generate(torch.tensor([0, 1, 0]), layer=3, block=1)
    assert not torch.allclose(w["down_w"][0], w["down_w"][1])
    assert torch.equal(w["down_w"][0], w["down_w"][2])


def test_round_robin_uses_every_batch_once_in_a_seeded_order() -> None:
    sizes, bs = [10, 3], [4, 2]
    plan = round_robin(sizes, bs, seed=0, epoch=0)
    assert [len(ix) for t, ix in plan if t == 0] and len(plan) == 3 + 2
    for task, n in enumerate(sizes):
        got = sorted(i for t, ix in plan if t == task for i in ix)
        assert got == list(range(n))  # every sample of every task, once
    assert sorted(len(ix) for t, ix in plan if t == 0) == [2, 4, 4]
    assert sorted(len(ix) for t, ix in plan if t == 1) == [1, 2]
    orders = {tuple((t, tuple(ix)) for t, ix in round_robin(sizes, bs, seed=0, epoch=e))
              for e in range(6)}  # fmt: skip
    assert len(orders) > 1  # reshuffled per epoch
    assert round_robin(sizes, bs, seed=0, epoch=2) == round_robin(sizes, bs, seed=0, epoch=2)
    assert round_robin(sizes, bs, seed=1, epoch=0) != plan
    ordered = round_robin(sizes, bs, seed=0, epoch=0, shuffle=False)
    assert [t for t, _ in ordered] == [0, 0, 0, 1, 1] and ordered[0][1] == [0, 1, 2, 3]
    ds = TaskBatches([list(range(10)), list("abc")], bs, names=["vqa", "caption"], epochs=2)
    assert len(ds) == 10 and ds.batches_per_epoch == 5
    task, items = ds[0]
    assert all(isinstance(x, int) == (task == 0) for x in items)
    with pytest.raises(ValueError, match="batch size"):
        round_robin([10], [4, 2], seed=0, epoch=0)


def test_trainable_share_equals_the_hand_count(tiny_vqa) -> None:
    model = tiny_vqa().model
    lns = layer_norm_names(model)
    assert len(lns) == 15  # embeddings + 3 per layer (2 + 2 layers) + the LM head's transform
    apply_mt_method(model, "per_task", n_tasks=2, reduction=2.0)
    d, b, positions = 64, 32, 12
    per_adapter = 2 * d * b + b + d  # down and up projections with biases
    expected = 2 * positions * per_adapter + len(lns) * 2 * d  # two tasks, LayerNorm gain + bias
    summary = trainable_summary(model)
    assert summary.trainable == expected
    assert summary.percent == pytest.approx(100 * expected / summary.total)
    # bart-base in VL-Adapter: 148,320 weights per adapter (d = 768, reduction 8)
    assert 2 * 768 * 96 + 96 + 768 == 148_320


def _losses(model, data, root) -> list[float]:
    loss = make_mt_loss(root)
    out = []
    for task, ds in enumerate(data.split("train")):
        batch = collate([ds[i] for i in range(min(16, len(ds)))], pad_id=0)
        batch["task"] = torch.full((batch["pixel_values"].shape[0],), task)
        with torch.no_grad():
            out.append(float(loss(model, batch)))
    return out


def test_a_multitask_run_learns_both_tasks_and_reloads(prepared) -> None:
    out, prep = prepared
    cfg = MultiTaskConfig(out=str(out), epochs=4, progress=False)
    data = multitask_data(cfg, prep)
    fresh = data.tasks[0].backbone()
    apply_mt_method(fresh.model, "per_task", n_tasks=2)
    before = _losses(fresh.model.eval(), data, fresh.model)
    res = train_multitask(MTJob(cfg, "per_task", 0), prep, out / "mt-per_task", data)
    assert res["lr"] == pytest.approx(3e-4 * 10)
    assert 0.0 <= res["test"]["vqa_accuracy"] <= 1.0 and "cider" in res["test"]
    reloaded = data.tasks[0].backbone()
    apply_mt_method(reloaded.model, "per_task", n_tasks=2)
    load_adapter(reloaded.model, out / "mt-per_task" / "best")
    after = _losses(reloaded.model.eval(), data, reloaded.model)
    assert after[0] < before[0] and after[1] < before[1]  # VQA and caption losses both fall
    # the saved multi-task adapter, reloaded from disk, reproduces the test scores of both tasks
    again = evaluate_multitask(out / "mt-per_task", prep)
    assert again == pytest.approx(res["test"])
    rows = [json.loads(x) for x in (out / "mt-per_task" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "eval" and "average" in r for r in rows)


def test_paper_preset_applies_vl_adapter_settings(prepared) -> None:
    out, prep = prepared
    cfg = MultiTaskConfig(out=str(out), preset="paper", epochs=1, max_train=8, progress=False)
    recipe = cfg.recipe
    assert (recipe["reduction"], recipe["prompt_tokens"], recipe["hyper"]) == (
        8.0,
        40,
        (512, 128, 8),
    )
    assert [cfg.lr_of(m) for m in ("full", "per_task", "shared", "compacter")] == [
        1e-4, 3e-4, 1e-3, 1e-3]  # fmt: skip
    res = train_multitask(MTJob(cfg, "hyperformer", 0), prep, out / "mt-paper")
    conf = yaml.safe_load((out / "mt-paper" / "config.yaml").read_text())
    train, adapter = conf["train"], conf["vl_multitask"]["adapter"]["config"]
    assert train["lr"] == 1e-3 and train["max_grad_norm"] == 5.0
    assert train["warmup_steps"] == round(0.1 * res["batches_per_epoch"])
    assert (adapter["task_embedding_dim"], adapter["task_hidden_dim"]) == (512, 128)
    assert adapter["projected_dim"] == 8 and adapter["conditional_layer_norm"] is False
    assert conf["vl_multitask"]["recipe"]["beams"] == 5
    compacter = method_config("compacter", data_model(prep), reduction=8.0)
    assert (compacter.phm_dim, compacter.shared_phm_rule, compacter.factorized_phm_W) == (
        2, False, False)  # fmt: skip


def data_model(prep):
    from adapterlab.vl.train import TaskData

    return TaskData("vqa", prep.sources["vqa"], {}).backbone().model


def test_bad_input_is_refused_clearly(capsys, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown multi-task method 'adapterz'"):
        MultiTaskConfig(methods="shared,adapterz")
    with pytest.raises(ValueError, match="lr_scales"):
        MultiTaskConfig(lr_scales="3,x")
    assert main(["multitask", "--methods", "nope"]) == 1
    assert "unknown multi-task method 'nope'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--pretrained"):
        run_multitask(MultiTaskConfig(data=str(tmp_path), preset="paper", out=str(tmp_path)))
