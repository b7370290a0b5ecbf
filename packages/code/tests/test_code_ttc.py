"""TTC training through the core Trainer: learns far above the majority type; only the NER
adapter and the head change; the adapter loads into the downstream model."""

from __future__ import annotations

import ast

import torch
from adapterlab.code.config import TTCConfig
from adapterlab.code.data.sources import stdlib_root
from adapterlab.code.models.backbone import load_backbone
from adapterlab.code.models.ner import TokenTypeModel
from adapterlab.code.train import train_ttc

FILES = ["bisect.py", "heapq.py", "textwrap.py", "colorsys.py", "keyword.py", "shlex.py",
         "fnmatch.py", "glob.py", "numbers.py", "sched.py", "stat.py", "this.py"]  # fmt: skip

JAVA = """public class Counter {
    private int count = 0;
    // adds one
    public int next(int step) { if (step > 0) { count += step; } return count; }
    public String name() { return "counter"; }
}
"""


def code_only(source: str) -> str:
    """The module without comments and docstrings: a random frozen encoder cannot tell a word
    inside a string or comment from code, so the test data is code (its types are learnable)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def test_ttc_learns_and_only_adapter_changes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in FILES:
        (src / name).write_text(code_only((stdlib_root() / name).read_text(encoding="utf-8")))
    for i in range(4):
        (src / f"Counter{i}.java").write_text(JAVA.replace("Counter", f"Counter{i}"))
    # the backbone as it is before training (same seed -> same random weights)
    reference, _ = load_backbone("tiny", seed=0)
    before = {k: v.clone() for k, v in reference.state_dict().items()}
    cfg = TTCConfig(
        model="tiny", source=str(src), out=str(tmp_path / "run"), cache_dir=None,
        max_length=64, max_files=None, num_proc=1, steps=150, batch_size=16, lr=1e-2,
        eval_every=75, reduction_factor=4,
    )  # fmt: skip
    report = train_ttc(cfg, progress=False)
    # far above the majority type, on held-out files
    acc, majority = report["test"]["accuracy"], report["majority_accuracy"]
    assert acc > 2 * majority and acc > majority + 0.2, report
    assert report["test"]["macro_f1"] > 3 * report["majority_macro_f1"]
    assert report["trainable_percent"] < 20
    # only the adapter and head changed: rebuild the trained model from the run's files
    from adapterlab.core import load_adapter

    encoder, _ = load_backbone("tiny", seed=0)
    model = TokenTypeModel(encoder, 17)
    load_adapter(model, tmp_path / "run" / "ner_adapter", name="ner")
    saved = dict(model.named_parameters())
    base = {k.removeprefix("encoder."): v for k, v in saved.items() if "adapters" not in k}
    for key, value in before.items():
        name = key.replace("output.dense.", "output.dense.base_layer.")
        if name in base:
            assert torch.equal(base[name], value), key
    adapter_params = [k for k in saved if "adapters.ner" in k]
    assert adapter_params and any(saved[k].abs().sum() > 0 for k in adapter_params if ".up." in k)
