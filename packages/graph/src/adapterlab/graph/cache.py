"""The frozen LLM's cache: per-token states for pre-training, node features, prompt embeddings.

One forward pass per node reads ``template + text + question``, tokenised jointly as one string
(as the original's prompt pass, BOS included where the tokenizer adds one); the text's tokens are
found by their character offsets. Because the LM is causal, the states of the ``template + text``
prefix equal those of a separate pass over it, so the pass gives:

- token pairs: the final hidden state at position k-1 with token k as its label, for every text
  token k (template, question and padding positions are dropped);
- the node feature: the state of the last text token (template + text);
- the prompt embedding: the state of the last token, after a question ending in ``Answer: "``.

The cache streams to disk chunk by chunk (``tokens/chunk_*.safetensors``), optionally in float16,
so peak memory does not grow with the node count. A run that is interrupted resumes at the
unfinished chunks and gives a bit-identical cache; under ``accelerate launch`` the processes
share the chunks (rank r builds chunks r, r + world, ...) with a byte-identical result. When all
chunks are done they are joined into ``node_features.npy``, ``prompt_embeddings.npy``,
``token_states.npy``, ``token_labels.npy`` and ``token_ptr.npy`` and the chunk files are
removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from adapterlab.core.engine import atomic_write_json, progress
from safetensors.numpy import load_file, save_file
from torch import nn

from .errors import CacheError

__all__ = [
    "CacheError",
    "CacheSpec",
    "LLMCache",
    "build_cache",
    "cache_fingerprint",
    "fingerprint_mismatch",
]

META = "meta.json"


@dataclass
class CacheSpec:
    """Everything the cached states depend on besides the texts (the fingerprint hashes it with
    the texts; a cache folder is reused only when the fingerprints are equal)."""

    model: str
    template: str = "Here is a text from a text-attributed graph:\n\n"
    question: str = '.\n\nQuestion: Which category does this text belong to?\nAnswer: "'
    max_text_tokens: int | None = 48
    """Text tokens kept per node; None: the whole text within the model's window (original)."""
    dtype: str = "float16"
    llm_dtype: str = "float32"
    chunk_nodes: int = 128
    batch_size: int = 16
    model_hash: str = ""
    """Identity of the weights and tokenizer (``models.llm.model_fingerprint``)."""
    format: int = 2
    """Version of the cache layout and preprocessing (bumped when either changes)."""


def cache_fingerprint(spec: CacheSpec, texts: list[str]) -> str:
    """Hash of the spec (model identity, template, question, token limit, dtypes) and the texts."""
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _window(tokenizer, model_max: int | None) -> int:
    limit = model_max or getattr(tokenizer, "model_max_length", None) or 2048
    return int(min(limit, 1_000_000))


def _cut_text(tokenizer, text: str, limit: int) -> str:
    """``text`` cut after its ``limit``-th token (character offsets of a separate encoding)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= limit:
        return text
    return text[: enc["offset_mapping"][limit - 1][1]]


def _sequences(
    spec: CacheSpec, tokenizer, texts: list[str], model_max: int | None = None
) -> list[tuple[list[int], int, int]]:
    """Per node: (token ids, first text position, number of text tokens).

    ``template + text + question`` is tokenised as one string (with the tokenizer's special
    tokens, as the original's prompt pass); text tokens are those that overlap the text (a BPE
    token such as " dog" after "noun:" starts at the template's space). The text is first cut to ``spec.max_text_tokens`` tokens, or (None) to what fits in
    the model's window with the template and question."""
    overhead = len(tokenizer(spec.template + "x" + spec.question)["input_ids"])
    limit = spec.max_text_tokens or max(1, _window(tokenizer, model_max) - overhead)
    out = []
    for raw in texts:
        text = _cut_text(tokenizer, raw, limit)
        enc = tokenizer(spec.template + text + spec.question, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        lo, hi = len(spec.template), len(spec.template) + len(text)
        # a token overlapping the text is a text token (" dog" after "noun:" starts at the space)
        pos = [k for k, (a, b) in enumerate(offsets) if b > a and a < hi and b > lo and k > 0]
        if not pos:  # no token starts inside the text: the one that covers its first character
            pos = [max(1, next((k for k, (_, b) in enumerate(offsets) if b > lo), 1))]
        first, last = pos[0], pos[-1]
        out.append((ids, first, last - first + 1))
    return out


@torch.no_grad()
def _run_chunk(
    model: nn.Module, seqs: list[tuple[list[int], int, int]], pad_id: int, batch_size: int, dtype
) -> dict[str, np.ndarray]:
    """LLM states of one chunk of nodes (batched by length to cut padding; node order kept)."""
    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i][0]), i))
    per_node: dict[int, tuple[torch.Tensor, ...]] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(seqs[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : len(seqs[i][0])] = torch.tensor(seqs[i][0])
            mask[row, : len(seqs[i][0])] = 1
        hidden = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device))
        hidden = hidden.last_hidden_state.float().cpu()
        for row, i in enumerate(batch):
            tokens, n_prefix, n_text = seqs[i]
            positions = torch.arange(n_prefix, n_prefix + n_text)
            per_node[i] = (
                hidden[row, positions - 1],
                torch.tensor(tokens[n_prefix : n_prefix + n_text]),
                hidden[row, n_prefix + n_text - 1],
                hidden[row, len(tokens) - 1],
            )
    nodes = [per_node[i] for i in range(len(seqs))]
    return {
        "states": torch.cat([n[0] for n in nodes]).numpy().astype(dtype),
        "labels": torch.cat([n[1] for n in nodes]).numpy().astype(np.int64),
        "counts": np.asarray([len(n[1]) for n in nodes], dtype=np.int64),
        "features": torch.stack([n[2] for n in nodes]).numpy().astype(dtype),
        "prompts": torch.stack([n[3] for n in nodes]).numpy().astype(dtype),
    }


class LLMCache:
    """Read-only view of a finished cache folder (arrays are memory-mapped)."""

    def __init__(self, root: str | Path, fingerprint: str | None = None) -> None:
        self.root = Path(root)
        meta_path = self.root / META
        if not meta_path.is_file():
            raise CacheError(
                f"{self.root}: no {META}; build the cache with `adapterlab-graph prepare`"
            )
        self.meta = json.loads(meta_path.read_text())
        if fingerprint is not None and self.meta.get("fingerprint") != fingerprint:
            raise CacheError(fingerprint_mismatch(self.root, self.meta, fingerprint))
        if not self.meta.get("complete"):
            raise CacheError(f"{self.root}: the cache is incomplete; rerun prepare to resume it")
        mm = {"mmap_mode": "r"}
        self.node_features = np.load(self.root / "node_features.npy", **mm)
        self.prompts = np.load(self.root / "prompt_embeddings.npy", **mm)
        self.token_states = np.load(self.root / "token_states.npy", **mm)
        self.token_labels = np.load(self.root / "token_labels.npy", **mm)
        self.token_ptr = np.load(self.root / "token_ptr.npy")

    @property
    def num_nodes(self) -> int:
        return int(self.meta["num_nodes"])

    @property
    def hidden_size(self) -> int:
        return int(self.meta["hidden_size"])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def lm_head(self) -> nn.Linear:
        """The LLM's frozen LM head, rebuilt from ``lm_head.safetensors``."""
        tensors = load_file(str(self.root / "lm_head.safetensors"))
        weight = torch.from_numpy(tensors["weight"]).float()
        head = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in tensors)
        state = {"weight": weight}
        if "bias" in tensors:
            state["bias"] = torch.from_numpy(tensors["bias"]).float()
        head.load_state_dict(state)
        return head.requires_grad_(False)

    def tokens_of(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """(states (T, d), labels (T,)) of one node's text tokens."""
        a, b = int(self.token_ptr[node]), int(self.token_ptr[node + 1])
        return self.token_states[a:b], self.token_labels[a:b]

    def bytes_on_disk(self) -> int:
        """Total size of the cache's files."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def fingerprint_mismatch(root: Path, meta: dict, expected: str) -> str:
    """One line naming both fingerprints and what differs."""
    return (
        f"{root} holds a cache with fingerprint {meta.get('fingerprint')} (model "
        f"{meta.get('spec', {}).get('model')!r}, {meta.get('num_nodes')} nodes), but this data, "
        f"model and settings give {expected}; it is never reused: choose another --cache folder "
        "or leave --cache out (each fingerprint then gets its own folder)"
    )


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process under ``accelerate launch``/``torchrun`` (their
    ``RANK``/``WORLD_SIZE`` variables); (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _wait_for(predicate, what: str, timeout: float) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise CacheError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)


def build_cache(
    root: str | Path,
    texts: list[str],
    model: nn.Module,
    tokenizer,
    spec: CacheSpec,
    *,
    show_progress: bool = True,
    stop_after_chunks: int | None = None,
    rank: int | None = None,
    world: int | None = None,
    wait_timeout: float = 24 * 3600.0,
) -> LLMCache | None:
    """Build (or resume) the cache of ``texts`` in ``root``; returns it when complete.

    Across processes (``rank``/``world``, by default from ``RANK``/``WORLD_SIZE``), rank r
    builds the chunks c with c % world == r, each into its own file; rank 0 writes the metadata
    first and joins the chunks once all exist; the others wait for the joined cache. Chunks do
    not depend on the process that built them, so the result is byte-identical to a 1-process
    build, and any mix of interrupted runs resumes at the missing chunks.

    ``stop_after_chunks`` stops after that many new chunks and returns None (to test resuming).
    """
    env_rank, env_world = process_rank()
    rank = env_rank if rank is None else rank
    world = env_world if world is None else world
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = len(texts)
    fingerprint = cache_fingerprint(spec, texts)
    meta_path = root / META
    dtype = np.float16 if spec.dtype == "float16" else np.float32
    hidden = int(model.get_output_embeddings().in_features)
    vocab = int(model.get_output_embeddings().out_features)
    if rank != 0:
        _wait_for(meta_path.is_file, f"{meta_path} (written by rank 0)", wait_timeout)
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != fingerprint:
            raise CacheError(fingerprint_mismatch(root, meta, fingerprint))
        if meta.get("complete"):
            if rank == 0:
                _drop_chunks(root)  # a kill between marking complete and cleaning up
            return LLMCache(root, fingerprint)
    else:
        meta = {
            "fingerprint": fingerprint, "spec": asdict(spec), "num_nodes": n,
            "hidden_size": hidden, "vocab_size": vocab, "complete": False,
        }  # fmt: skip
        head = model.get_output_embeddings()
        tensors = {"weight": head.weight.detach().float().cpu().numpy()}
        if head.bias is not None:
            tensors["bias"] = head.bias.detach().float().cpu().numpy()
        save_file(tensors, str(root / "lm_head.safetensors"))
        (root / "tokens").mkdir(exist_ok=True)
        atomic_write_json(meta_path, meta)
    seqs = _sequences(spec, tokenizer, texts, _max_positions(model))
    chunks = list(range(0, n, spec.chunk_nodes))
    files = [root / "tokens" / f"chunk_{c:05d}.safetensors" for c in range(len(chunks))]
    todo = [c for c in range(len(chunks)) if c % world == rank and not files[c].is_file()]
    bar = progress(todo, desc="LLM cache (chunks)", total=len(todo)) if show_progress else todo
    for new, c in enumerate(bar):
        if stop_after_chunks is not None and new >= stop_after_chunks:
            return None
        lo, hi = chunks[c], min(chunks[c] + spec.chunk_nodes, n)
        out = _run_chunk(model, seqs[lo:hi], tokenizer.pad_token_id, spec.batch_size, dtype)
        tmp = files[c].with_suffix(f".tmp{rank}")
        save_file(out, str(tmp))
        tmp.replace(files[c])  # the chunk file's existence marks it done
    if rank != 0:
        _wait_for(lambda: json.loads(meta_path.read_text()).get("complete", False),
                  f"rank 0 to join {root}", wait_timeout)  # fmt: skip
        return LLMCache(root, fingerprint)
    _wait_for(lambda: all(f.is_file() for f in files), f"the other ranks' chunks in {root}",
              wait_timeout)  # fmt: skip
    _join_chunks(root, len(chunks), n, hidden, dtype)
    meta["complete"] = True
    atomic_write_json(meta_path, meta)
    _drop_chunks(root)
    return LLMCache(root, fingerprint)


def _max_positions(model: nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _drop_chunks(root: Path) -> None:
    """Remove the per-chunk token files once they are joined (they would double the disk use)."""
    shutil.rmtree(root / "tokens", ignore_errors=True)


def _append_npy(path: Path, dtype, shape: tuple[int, ...], parts) -> None:
    """Write a ``.npy`` file from ``parts`` (arrays, in order) with plain file writes: unlike a
    writable memmap, nothing of the file stays mapped in the process, so memory stays flat."""
    with open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": shape}  # fmt: skip
        np.lib.format.write_array_header_1_0(f, header)
        for part in parts:
            f.write(np.ascontiguousarray(part, dtype=dtype).tobytes())


def _join_chunks(root: Path, num_chunks: int, n: int, hidden: int, dtype) -> None:
    """Stream the per-chunk files into one ``.npy`` each (token states, token labels, node
    features, prompt embeddings) plus per-node pointers, one chunk in memory at a time."""
    files = [root / "tokens" / f"chunk_{c:05d}.safetensors" for c in range(num_chunks)]
    for name, key in (("node_features.npy", "features"), ("prompt_embeddings.npy", "prompts")):
        _append_npy(root / name, dtype, (n, hidden), (load_file(str(f))[key] for f in files))
    counts = np.concatenate([load_file(str(f))["counts"] for f in files])
    if len(counts) != n:
        raise CacheError(f"{root}: token chunks cover {len(counts)} nodes, expected {n}")
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(ptr[-1])
    _append_npy(root / "token_states.npy", dtype, (total, hidden),
                (load_file(str(f))["states"] for f in files))  # fmt: skip
    _append_npy(root / "token_labels.npy", np.int64, (total,),
                (load_file(str(f))["labels"] for f in files))  # fmt: skip
    np.save(root / "token_ptr.npy", ptr)
