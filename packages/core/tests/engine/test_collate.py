"""Issue #19 item 1: a DataLoader's own collate_fn wins for its split (eval, test, evaluate())."""

from __future__ import annotations

import pytest
from adapterlab.core.engine import TrainConfig, Trainer
from adapterlab.core.engine.data import as_source
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss
from torch.utils.data import DataLoader, default_collate


class Recording:
    """A collate function that counts the items it batched."""

    def __init__(self) -> None:
        self.items = 0

    def __call__(self, items):
        self.items += len(items)
        return default_collate(items)


def _trainer(tmp_path, **kwargs) -> Trainer:
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"), max_steps=1, batch_size=8, plots=False, progress=False
    )
    return Trainer(
        build_toy_model(),
        cfg,
        train_data=ToyClusters(16),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
        **kwargs,
    )


def test_eval_dataloader_collate_wins_over_trainer_collate(tmp_path):
    train_c, val_c, test_c = Recording(), Recording(), Recording()
    val, test = ToyClusters(12, split_seed=1), ToyClusters(10, split_seed=2)
    trainer = _trainer(
        tmp_path,
        collate_fn=train_c,
        eval_data=DataLoader(val, collate_fn=val_c),
        test_data=DataLoader(test, collate_fn=test_c),
    )
    trainer.fit()
    assert val_c.items >= 12 and test_c.items >= 10  # validation and test used their own
    assert train_c.items == 8  # one training batch only, nothing from eval/test
    before = val_c.items
    trainer.evaluate(DataLoader(val, collate_fn=val_c))
    assert val_c.items == before + 12 and train_c.items == 8
    # a DataLoader without its own collate_fn uses the Trainer's
    trainer.evaluate(DataLoader(val))
    assert train_c.items == 8 + 12
    # an explicit collate_fn for evaluate() wins over both
    explicit = Recording()
    trainer.evaluate(DataLoader(val, collate_fn=val_c), collate_fn=explicit)
    assert explicit.items == 12 and val_c.items == before + 12


def test_per_split_collate_mapping():
    train_c, eval_c = Recording(), Recording()
    data = ToyClusters(4)
    mapping = {"train": train_c, "eval": eval_c}
    assert as_source(data, mapping, "train").collate_fn is train_c
    assert as_source(data, mapping, "eval").collate_fn is eval_c
    assert as_source(data, mapping, "test").collate_fn is eval_c  # eval also serves test
    assert as_source(data, {"train": train_c}, "eval").collate_fn is default_collate
    own = Recording()
    assert as_source(DataLoader(data, collate_fn=own), mapping, "train").collate_fn is own
    assert as_source(DataLoader(data), train_c, "eval").collate_fn is train_c


@pytest.mark.parametrize("split", ["eval", "test"])
def test_trainer_accepts_a_per_split_mapping(tmp_path, split):
    train_c, other = Recording(), Recording()
    trainer = _trainer(tmp_path, collate_fn={"train": train_c, split: other})
    trainer.evaluate(ToyClusters(6), split=split)
    assert other.items == 6 and train_c.items == 0
