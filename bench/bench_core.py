"""adapterlab.core benchmark (``make bench-core``): prints a table, writes bench/results/core.json.

Everything is measured in the same run on the same model: a RoBERTa-base-sized config
(12 layers, d=768, 12 heads, FFN 3072, vocab 50265) with random init (seed 0), sequence 128,
batch 8, on the CPU, with the same batch, loss (sequence classification, 2 labels), optimizer
(AdamW, lr 1e-4, over the trainable tensors) and thread count everywhere.

1. LoRA (r=8, alpha=8, query+value): ``adapterlab.core`` against calling PEFT directly.
2. Pfeiffer bottleneck (reduction 16, after the FFN, + the classification head) against
   AdapterHub ``adapters`` ``seq_bn``, which trains the same tensors. ``adapters`` pins an older
   ``transformers``, so it runs in its own ``uv run --isolated`` environment
   (``bench/_adapterhub_worker.py``) and reports through JSON.
3. Adapter training (Pfeiffer, LoRA) against full fine-tuning.
4. MoSA and low-bit adapters (when present): inference time after ``merge_adapter`` against a
   plain bottleneck adapter of the same shape, and adapter file sizes in bytes.

Method. Each training configuration runs in its own persistent subprocess (AdapterHub's in its
own uv environment). After its imports and the batch exist, a worker records its resident set
size (``VmRSS``), resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``),
builds the model, adds the adapter and then runs training steps (forward, backward, AdamW step)
on command. *Peak memory* is the worker's ``VmHWM`` minus that ``VmRSS``: weights, gradients,
optimizer state and activations of that job, without the interpreter and libraries (no
tracemalloc; RSS is what the OS had to provide). After ``--warmup`` untimed steps per worker,
``--rounds`` rounds each run ``--steps`` timed steps of every configuration round-robin, the
order reversed every round, so drifting machine load hits all configurations alike. *Step time*
is the median of a configuration's timed steps (the minimum is in the JSON too). Ratios are
ours / theirs (lower is better). Inference (4) runs in one more subprocess: variants are deep
copies of one base model, forward passes interleaved under ``torch.inference_mode``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "core.json"
ADAPTERHUB = ["adapters==1.3.0", "transformers==4.57.6", "torch==2.13.0"]
TRAIN_KINDS = ("lora_ours", "lora_peft", "pfeiffer_ours", "adapterhub", "full")
TARGETS = {"lora_time": 1.05, "bottleneck_time": 1.0, "adapter_memory": 0.6}


# ----------------------------------------------------------------------------- shared helpers
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_batch(batch: int, seq: int):  # noqa: ANN201
    """The benchmark batch (identical in ``_adapterhub_worker.py``)."""
    import torch

    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(3, 50265, (batch, seq), generator=gen)
    labels = torch.randint(0, 2, (batch,), generator=gen)
    return ids, labels


def build_roberta(layers: int = 12, seed: int = 0):  # noqa: ANN201
    """RoBERTa-base-sized sequence classifier, random init (identical in the AdapterHub worker)."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(seed)
    cfg = RobertaConfig(
        vocab_size=50265,
        hidden_size=768,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    cfg._attn_implementation = "sdpa"
    return RobertaForSequenceClassification(cfg)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- workers
_TAG = "@@BENCH "


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(_TAG + json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(build: Callable[[], tuple[Callable[[], None], dict[str, Any]]]) -> None:
    """Persistent worker loop (also used by ``_adapterhub_worker.py``).

    Call after the imports and the batch exist. Resets the peak-RSS counter, runs ``build()``
    (model + adapter + optimizer; returns a one-step function and facts such as the trainable
    count), then answers stdin commands: ``steps N`` (times N steps), ``report`` (peak memory and
    facts), ``quit``.
    """
    gc.collect()
    baseline = _status_kib("VmRSS")
    peak_ok = _reset_peak()
    step, info = build()
    _emit({"ready": True})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "steps":
            times = []
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            _emit({"times": times})
        elif cmd[0] == "report":
            peak = _status_kib("VmHWM")
            _emit({**info, "peak_delta_mib": (peak - baseline) / 1024 if peak_ok else None})
        elif cmd[0] == "quit":
            break


def train_step_fn(model, ids, labels):  # noqa: ANN001, ANN201
    """AdamW (lr 1e-4) over the trainable tensors; one forward/backward/step per call."""
    import torch

    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)

    def step() -> None:
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, {"trainable_params": sum(p.numel() for p in trainable)}


def train_worker(kind: str, args: argparse.Namespace) -> None:
    """Persistent training worker for ``kind`` in this environment (see :func:`serve`)."""
    import adapterlab.core as core
    import peft
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    ids, labels = make_batch(args.batch, args.seq)

    def build() -> tuple[Callable[[], None], dict[str, Any]]:
        model = build_roberta(args.layers)
        if kind == "lora_ours":
            core.add_adapter(model, core.get_config("lora", r=8, alpha=8))
        elif kind == "lora_peft":
            model = peft.get_peft_model(
                model, peft.LoraConfig(r=8, lora_alpha=8, target_modules=["query", "value"])
            )
        elif kind == "pfeiffer_ours":
            core.add_adapter(
                model,
                core.get_config("pfeiffer", reduction_factor=16, modules_to_save=["classifier"]),
            )
        elif kind == "full":
            model.requires_grad_(True)
        else:
            raise ValueError(kind)
        step, info = train_step_fn(model, ids, labels)
        return step, {**info, "impl": kind, "threads": torch.get_num_threads()}

    serve(build)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix == ".safetensors")


def inference_worker(args: argparse.Namespace) -> dict[str, Any]:
    """MoSA / low-bit after merge vs a plain bottleneck of the same shape; file sizes."""
    import adapterlab.core as core
    import torch
    from adapterlab.core import BottleneckConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    ids, _ = make_batch(args.batch, args.seq)
    base = build_roberta(args.layers).eval()  # built once, copied per variant (same weights)
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-core-"))
    try:
        for method in ("mosa", "lowbit"):
            if method not in core.available_presets():
                out[method] = {"skipped": f"preset {method!r} not registered"}
                continue
            cfg = core.get_config(method)
            plain_cfg = BottleneckConfig(
                **{
                    f.name: getattr(cfg, f.name)
                    for f in dataclasses.fields(BottleneckConfig)
                    if hasattr(cfg, f.name)
                }
            )
            plain = copy.deepcopy(base)
            core.add_adapter(plain, plain_cfg, "plain")
            plain.eval()  # new adapter modules start in training mode (dropout)
            core.save_adapter(plain, tmp / f"{method}-plain", "plain")
            model = copy.deepcopy(base)
            core.add_adapter(model, cfg, method)
            core.save_adapter(model, tmp / method, method)
            sizes = {
                "plain_fp32": _dir_bytes(tmp / f"{method}-plain"),
                method: _dir_bytes(tmp / method),
            }
            if method == "lowbit":  # the other precisions, same shape
                sized = copy.deepcopy(base)
                for bits in (2, 4, 8):
                    core.add_adapter(sized, core.get_config("lowbit", bits=bits), f"lb{bits}")
                    core.save_adapter(sized, tmp / f"lb{bits}", f"lb{bits}")
                    sizes[f"lowbit_{bits}bit"] = _dir_bytes(tmp / f"lb{bits}")
                sizes = {
                    "plain_fp32": sizes["plain_fp32"],
                    "lowbit_1bit": sizes["lowbit"],
                    **{k: v for k, v in sizes.items() if k.startswith("lowbit_")},
                }
                del sized
            merged: bool | str = True
            try:
                core.merge_adapter(model, method)
                if method in core.list_adapters(model):
                    core.save_adapter(model, tmp / f"{method}-merged", method)
                    sizes[f"{method}_after_merge"] = _dir_bytes(tmp / f"{method}-merged")
            except ValueError as err:
                merged = f"not mergeable: {err}"
            model.eval()
            variants = {"plain": plain, f"{method}_merged": model}
            times: dict[str, list[float]] = {k: [] for k in variants}
            with torch.inference_mode():
                for _ in range(args.warmup):
                    for m in variants.values():
                        m(input_ids=ids)
                for rep in range(args.infer_reps):
                    order = list(variants.items())
                    for key, m in order if rep % 2 == 0 else reversed(order):
                        t0 = time.perf_counter()
                        m(input_ids=ids)
                        times[key].append(time.perf_counter() - t0)
            out[method] = {
                "merged": merged,
                "config": {
                    k: v for k, v in cfg.to_dict()["config"].items() if k != "modules_to_save"
                },
                "infer_times_s": times,
                "file_bytes": sizes,
            }
            del model, plain
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- orchestration
def _common(args: argparse.Namespace) -> list[str]:
    return [
        f"--threads={args.threads}",
        f"--batch={args.batch}",
        f"--seq={args.seq}",
        f"--layers={args.layers}",
    ]


def _adapterhub_prefix() -> list[str] | None:
    uv = shutil.which("uv")
    if uv is None:
        return None
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = [uv, "run", "--isolated", "--no-project", "--quiet", "--python", py]
    for req in ADAPTERHUB:
        cmd += ["--with", req]
    return cmd + ["python"]


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "UV_LOCKED", "UV_FROZEN"):
        env.pop(key, None)
    return env


class Worker:
    """A persistent measurement subprocess speaking the :func:`serve` protocol."""

    def __init__(self, kind: str, cmd: list[str], env: dict[str, str] | None, log: Path) -> None:
        self.kind = kind
        self.log = log
        self._err = open(log, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env=env,
            cwd=ROOT,
            bufsize=1,
        )

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_TAG):
                return json.loads(line[len(_TAG) :])
        self._err.flush()
        tail = self.log.read_text()[-1500:]
        raise RuntimeError(f"{self.kind} worker exited (rc={self.proc.wait()}):\n{tail}")

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.recv()

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._err.close()


def _start(kind: str, args: argparse.Namespace, tmp: Path) -> Worker:
    if kind == "adapterhub":
        prefix = _adapterhub_prefix()
        if prefix is None:
            raise RuntimeError("uv not found on PATH; the AdapterHub comparison needs uv")
        cmd = prefix + [str(ROOT / "bench" / "_adapterhub_worker.py"), *_common(args)]
        return Worker(kind, cmd, _clean_env(), tmp / f"{kind}.log")
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--worker={kind}", *_common(args)]
    return Worker(kind, cmd, None, tmp / f"{kind}.log")


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


_T0 = time.perf_counter()


def _progress(msg: str) -> None:
    print(f"[bench-core {time.perf_counter() - _T0:6.0f}s] {msg}", file=sys.stderr, flush=True)


def _train_measurements(args: argparse.Namespace, tmp: Path, errors: dict[str, str]) -> dict:
    kinds = [k for k in TRAIN_KINDS if not (k == "adapterhub" and args.skip_adapterhub)]
    if "adapterhub" in kinds:  # create/reuse the isolated env before anything is timed
        _progress("preparing the AdapterHub environment (uv run --isolated) ...")
        prefix = _adapterhub_prefix()
        try:
            if prefix is None:
                raise RuntimeError("uv not found on PATH")
            subprocess.run(
                prefix + ["-c", "import adapters"],
                check=True,
                env=_clean_env(),
                cwd=ROOT,
                timeout=1800,
                capture_output=True,
            )
        except (RuntimeError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", "") or ""
            errors["adapterhub"] = f"environment: {err} {str(detail)[-500:]}"
            kinds.remove("adapterhub")
    _progress(f"starting workers: {', '.join(kinds)}")
    workers: dict[str, Worker] = {}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    reports: dict[str, dict] = {}
    try:
        for kind in kinds:
            try:
                workers[kind] = _start(kind, args, tmp)
            except (OSError, RuntimeError) as err:
                errors[kind] = str(err)
        for kind, w in list(workers.items()):
            try:
                w.recv()  # ready: imports done, model built
                _progress(f"{kind} ready")
                if args.warmup:
                    w.ask(f"steps {args.warmup}")
            except RuntimeError as err:
                errors[kind] = str(err)
                workers.pop(kind).close()
        for rnd in range(args.rounds):
            order = list(workers) if rnd % 2 == 0 else list(reversed(workers))
            _progress(f"round {rnd + 1}/{args.rounds}: {' -> '.join(order)}")
            for kind in order:
                try:
                    times[kind] += workers[kind].ask(f"steps {args.steps}")["times"]
                except RuntimeError as err:
                    errors[kind] = str(err)
        for kind, w in workers.items():
            if kind not in errors:
                try:
                    reports[kind] = w.ask("report")
                except RuntimeError as err:
                    errors[kind] = str(err)
    finally:
        for w in workers.values():
            w.close()
    return {
        k: {
            **reports[k],
            "step_times_s": times[k],
            "step_time_s": _median(times[k]),
            "step_time_min_s": min(times[k], default=None),
            "peak_mib": reports[k].get("peak_delta_mib"),
        }
        for k in reports
    }


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    errors: dict[str, str] = {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp_name:
        tmp = Path(tmp_name)
        train = _train_measurements(args, tmp, errors)
        _progress("inference: MoSA / low-bit after merge vs a plain adapter")
        out = tmp / "infer.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker=inference",
            f"--out={out}",
            f"--infer-reps={args.infer_reps}",
            f"--warmup={args.warmup}",
            *_common(args),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode == 0 and out.is_file():
            inference = json.loads(out.read_text())
        else:
            inference, errors["inference"] = {}, proc.stderr[-1500:]
    get = lambda k, f: train.get(k, {}).get(f)  # noqa: E731
    ratios = {
        "lora_time_ours_over_peft": _ratio(
            get("lora_ours", "step_time_s"), get("lora_peft", "step_time_s")
        ),
        "lora_peak_ours_over_peft": _ratio(
            get("lora_ours", "peak_mib"), get("lora_peft", "peak_mib")
        ),
        "bottleneck_time_ours_over_adapterhub": _ratio(
            get("pfeiffer_ours", "step_time_s"), get("adapterhub", "step_time_s")
        ),
        "bottleneck_trainable_equal": (
            get("pfeiffer_ours", "trainable_params") == get("adapterhub", "trainable_params")
            if "adapterhub" in train and "pfeiffer_ours" in train
            else None
        ),
        "pfeiffer_peak_over_full": _ratio(
            get("pfeiffer_ours", "peak_mib"), get("full", "peak_mib")
        ),
        "pfeiffer_time_over_full": _ratio(
            get("pfeiffer_ours", "step_time_s"), get("full", "step_time_s")
        ),
        "lora_peak_over_full": _ratio(get("lora_ours", "peak_mib"), get("full", "peak_mib")),
        "lora_time_over_full": _ratio(get("lora_ours", "step_time_s"), get("full", "step_time_s")),
    }
    for method, res in inference.items():
        if "infer_times_s" in res:
            t = {k: _median(v) for k, v in res["infer_times_s"].items()}
            res["infer_time_s"] = t
            ratios[f"{method}_merged_infer_over_plain"] = _ratio(
                t.get(f"{method}_merged"), t.get("plain")
            )
    return {
        "setup": {
            "model": f"RoBERTa-base-sized random init ({args.layers} layers, d=768, 12 heads, "
            "FFN 3072, vocab 50265)",
            "seq": args.seq,
            "batch": args.batch,
            "device": "cpu",
            "threads": next((r.get("threads") for r in train.values()), args.threads),
            "warmup_steps": args.warmup,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "adapterhub_env": ADAPTERHUB,
            "method": "one persistent subprocess per configuration (AdapterHub in its own uv "
            "environment); timed steps interleaved round-robin, order reversed every round; "
            "peak memory = VmHWM - VmRSS after resetting the peak (/proc/self/clear_refs=5) "
            "just before building the model",
            "wall_s": round(time.perf_counter() - t_start, 1),
        },
        "targets": TARGETS,
        "train": train,
        "inference": inference,
        "ratios": ratios,
        "errors": errors,
    }


# ----------------------------------------------------------------------------- table
def _f(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _verdict(ratio: float | None, target: float) -> str:
    if ratio is None:
        return ""
    return f"(target <= {target}: {'PASS' if ratio <= target else 'MISS'})"


def render(res: dict[str, Any], out: Path = RESULTS) -> str:
    s, t, r = res["setup"], res["train"], res["ratios"]
    lines = [
        f"adapterlab.core benchmark: {s['model']}, seq {s['seq']}, batch {s['batch']}, CPU, "
        f"{s['threads']} threads; median of {s['rounds']} interleaved rounds x "
        f"{s['steps_per_round']} step(s)",
        "",
        f"{'configuration':<38}{'step s':>9}{'peak MiB':>10}{'trainable':>12}",
    ]
    names = {
        "lora_ours": "(1) LoRA r=8 q,v  adapterlab.core",
        "lora_peft": "(1) LoRA r=8 q,v  PEFT direct",
        "pfeiffer_ours": "(2) Pfeiffer rf=16 adapterlab.core",
        "adapterhub": "(2) seq_bn rf=16  AdapterHub",
        "full": "(3) full fine-tuning",
    }
    for key, label in names.items():
        row = t.get(key)
        if row is None:
            lines.append(f"{label:<38}{'n/a':>9}{'n/a':>10}{'n/a':>12}")
            continue
        lines.append(
            f"{label:<38}{_f(row['step_time_s']):>9}{_f(row['peak_mib'], '.0f'):>10}"
            f"{row['trainable_params']:>12,}"
        )
    lines += [
        "",
        f"(1) LoRA step time ours/PEFT      {_f(r['lora_time_ours_over_peft'])} "
        f"{_verdict(r['lora_time_ours_over_peft'], TARGETS['lora_time'])}; "
        f"peak ours/PEFT {_f(r['lora_peak_ours_over_peft'])}",
        f"(2) Pfeiffer step time ours/AH    {_f(r['bottleneck_time_ours_over_adapterhub'])} "
        f"{_verdict(r['bottleneck_time_ours_over_adapterhub'], TARGETS['bottleneck_time'])}; "
        f"trainable counts equal: {r['bottleneck_trainable_equal']}",
        f"(3) Pfeiffer peak / full FT peak  {_f(r['pfeiffer_peak_over_full'])} "
        f"{_verdict(r['pfeiffer_peak_over_full'], TARGETS['adapter_memory'])}; "
        f"step time / full {_f(r['pfeiffer_time_over_full'])}",
        f"    LoRA peak / full FT peak      {_f(r['lora_peak_over_full'])} "
        f"{_verdict(r['lora_peak_over_full'], TARGETS['adapter_memory'])}; "
        f"step time / full {_f(r['lora_time_over_full'])}",
    ]
    for method, res_m in res["inference"].items():
        if "infer_time_s" not in res_m:
            lines.append(f"(4) {method}: {res_m.get('skipped', 'n/a')}")
            continue
        it, fb = res_m["infer_time_s"], res_m["file_bytes"]
        merged = "merged" if res_m["merged"] is True else str(res_m["merged"])[:40]
        lines.append(
            f"(4) {method} ({merged}) inference {_f(it.get(f'{method}_merged'))} s vs plain "
            f"{_f(it.get('plain'))} s, ratio {_f(r.get(f'{method}_merged_infer_over_plain'))}"
        )
        sizes = ", ".join(f"{k} {v:,} B" for k, v in fb.items())
        lines.append(f"    file sizes: {sizes}")
    if res["errors"]:
        lines.append("")
        for k, v in res["errors"].items():
            lines.append(f"error in {k}: {v.splitlines()[-1] if v else v}")
    lines.append(f"\nwall time {s['wall_s']} s; results: {out}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="adapterlab.core benchmark: LoRA vs PEFT, Pfeiffer vs AdapterHub seq_bn, "
        "adapter vs full fine-tuning, MoSA/low-bit inference and file sizes (CPU).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per configuration")
    parser.add_argument(
        "--steps", type=int, default=1, help="timed steps per configuration and round"
    )
    parser.add_argument("--infer-reps", type=int, default=6, help="timed forward passes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--layers", type=int, default=12, help="12 = RoBERTa-base")
    parser.add_argument("--skip-adapterhub", action="store_true", help="no AdapterHub comparison")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "inference":
        _write_json(args.out, inference_worker(args))
        return
    if args.worker:
        train_worker(args.worker, args)
        return
    res = orchestrate(args)
    _write_json(args.out, res)
    print(render(res, args.out))


if __name__ == "__main__":
    main()
