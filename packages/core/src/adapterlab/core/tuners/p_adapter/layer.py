"""p-adapter layer (Wu et al., "p-Laplacian Adaptation for Generative Pre-trained
Vision-Language Models", AAAI 2024, arXiv:2312.10613).

The paper reads attention followed by an adapter as one step of message passing on the bipartite
attention graph of each head h: query nodes i carry Q^_i = q_i W_o^h, value nodes j carry
V^_j = v_j W_o^h (``q``/``v`` the head's query/value projections, ``W_o^h`` its slice of the
output projection) and the edges are the softmax attention M_ij. p-Laplacian message passing
(pGNN, Fu et al. 2022) re-weights the edges and aggregates (one step, p learned per layer):

    Mbar_ij = M_ij * || sqrt(M_ij / D_ii) Q^_i - sqrt(M_ij / D_jj) V^_j || ^ (p - 2)
    alpha_i = (sum_j Mbar_ij / D_ii + 2 mu / p) ^ -1,     beta_i = (2 mu / p) * alpha_i
    U_i     = sum_h [ alpha_i * (D^-1/2 Mbar D^-1/2 V^)_i + beta_i * Q^_i ]   (+ the output bias)
    out     = sigma(U W_down) W_up + U

Only query rows are kept; the residual and LayerNorm of the host layer follow unchanged.

Computation. The attention probabilities and the query/value projections are the ones the
attention module computed in this very forward pass (captured with forward hooks on its own
``query``/``key``/``value`` Linears and its output; when the module does not return its
probabilities, e.g. SDPA kernels, they are recomputed from the captured q and k): the model runs
once and ``output_attentions`` stays off. The norm never materialises the [n, m, d] differences:
||a x - b y||^2 = a^2 ||x||^2 + b^2 ||y||^2 - 2ab x.y, with x.y = q G_h v^T and
G_h = W_o^h^T W_o^h (d_h x d_h), so memory stays O(heads * n * m) like attention itself.

Design choices where the paper is silent (ours, listed in the vl README):
- degrees: D_ii is the row sum of M (1 under softmax; not 1 on pooled or masked graphs). A value
  node's literal bipartite degree is its column sum over *all* queries, which in a causal
  decoder depends on later tokens (a leak) and is unknown during generation; by default
  (``value_degree="unit"``) each value node keeps the degree 1 its token has as a query row.
  ``value_degree="column"`` gives the literal column sums (encoders only).
- ``U`` is computed as the attention output plus the change the re-weighting makes:
  U = attn_out + [alpha D^-1/2 Mbar D^-1/2 V^ + beta Q^ - M V^] (identical without pooling).
  With cross-attention pooling (the code's option) the bracket is evaluated on the pooled graph,
  so pooling approximates only the re-weighting, and p = 2, mu = 0 is still exactly the plain
  adapter on the attention output.
- ``p = lo + (hi - lo) * sigmoid(raw)`` keeps p in ``p_range`` with finite gradients; mu is
  clamped at 0; eps sits inside the norm; all adapter arithmetic runs in float32.

``variant="code"`` reproduces the released code (wuhy68/p-Adapter, ``eff_modeling_blip.py``,
``BertSelfAttention`` / ``BertSelfOutput``), equation for equation (:func:`code_reference` is
the dense transcription the tests compare against):

- node features F = W_down(W_o x + b_o) + b_down, split into heads, for the value tokens
  (x = v) and, in cross-attention, for the text queries (x = q, the query projection: the
  code's ``mixed_query_layer``, never assigned in the release, is BERT's ``self.query(h)``);
- self-attention: the graph is the attention matrix itself over the tokens (the code's
  training path: no key/value cache), so token i's own value is a node with its self-loop
  weight M_ii; cross-attention: the bipartite graph [[0, M], [M^T, 0]] over the text queries
  and the image tokens, average-pooled (``adaptive_avg_pool``, overlapping windows) to
  ``cross_pool_nodes`` nodes, both the probabilities and the values;
- edge weights w_ij = M_ij * || sqrt(M_ij + e) (F_j - F_i) + e ||^(p-2), e = ``eps`` (the
  release: 1e-8) added to every component before the norm, as released. On the self-loop
  F_j - F_i = 0, so the norm is e sqrt(d) and the weight (e sqrt(d))^(p-2) M_ii dominates the
  row for p < 2 (at p = 1.25, ~0.9998 of the row): the release's behaviour, kept;
- alpha_i = 1 / (sum_j w_ij + 2 mu / p), beta_i = (2 mu / p) alpha_i in self-attention and 0 in
  cross-attention (the code slices the off-diagonal block of a diagonal matrix);
  F'_i = alpha_i sum_j w_ij F_j + beta_i F_i;
- output h + W_up(GELU(W_gate h) * F'), h the attention output; mu = mu0 (2 + tanh(m)).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..base import SublayerAdapter
from ..bottleneck.layer import make_activation

__all__ = [
    "PAdapterBranch",
    "code_reference",
    "dense_reference",
    "pool_assignment",
    "is_bert_attention",
]


def is_bert_attention(module: nn.Module) -> bool:
    """True for a BERT-layout attention module: ``self.{query,key,value}`` and ``output.dense``."""
    inner = getattr(module, "self", None)
    out = getattr(module, "output", None)
    if not isinstance(inner, nn.Module) or not isinstance(out, nn.Module):
        return False
    projections = [getattr(inner, k, None) for k in ("query", "key", "value")]
    dense = getattr(out, "dense", None)
    dense = getattr(dense, "base_layer", dense)
    return all(isinstance(p, nn.Linear) for p in projections) and isinstance(dense, nn.Linear)


def pool_assignment(m: int, k: int, device: torch.device) -> torch.Tensor:
    """[m, k] 0/1 matrix putting ``m`` tokens into ``k`` contiguous, near-equal groups."""
    k = min(k, m)
    group = torch.div(torch.arange(m, device=device) * k, m, rounding_mode="floor")
    return F.one_hot(group, k).float()


def dense_reference(
    M: torch.Tensor,
    q_nodes: torch.Tensor,
    v_nodes: torch.Tensor,
    p: float,
    mu: float,
    eps: float,
    value_degree: str = "unit",
) -> torch.Tensor:
    """The paper's equations for one head, written out densely: ``U`` for the query rows.

    ``M`` [n, m] attention, ``q_nodes`` [n, d] query-node features, ``v_nodes`` [m, d] value-node
    features. Slow (it materialises every pairwise difference); for tests.
    """
    n, m = M.shape
    d_q = M.sum(1)
    d_v = M.sum(0) if value_degree == "column" else torch.ones(m, dtype=M.dtype)
    m_bar = torch.zeros_like(M)
    for i in range(n):
        for j in range(m):
            diff = (M[i, j] / d_q[i]).sqrt() * q_nodes[i] - (M[i, j] / d_v[j]).sqrt() * v_nodes[j]
            m_bar[i, j] = M[i, j] * (diff.pow(2).sum() + eps) ** ((p - 2) / 2)
    alpha = 1.0 / (m_bar.sum(1) / d_q + 2 * mu / p)
    beta = (2 * mu / p) * alpha
    prop = torch.diag(d_q.rsqrt()) @ m_bar @ torch.diag(d_v.rsqrt())
    return alpha[:, None] * (prop @ v_nodes) + beta[:, None] * q_nodes


def code_reference(
    A: torch.Tensor,
    f_q: torch.Tensor | None,
    f_v: torch.Tensor,
    p: float,
    mu: float,
    e: float = 1e-8,
) -> torch.Tensor:
    """The released code's re-weighting for one head, transcribed densely: F' for the query rows.

    Self-attention (``f_q`` None): ``A`` [n, n] attention, ``f_v`` [n, d] the tokens' value
    features. Cross-attention: ``A`` [n, m] (already pooled), ``f_q`` [n, d] query features,
    ``f_v`` [m, d]; the code's bipartite (n + m) graph is built and its query rows kept, beta
    sliced off the diagonal (0). Materialises every difference, as the code does; for tests.
    """
    n = A.shape[0]
    if f_q is None:
        graph, feats = A, f_v
    else:
        m = A.shape[1]
        graph = torch.zeros(n + m, n + m, dtype=A.dtype)
        graph[:n, n:], graph[n:, :n] = A, A.T
        feats = torch.cat([f_q, f_v], 0)
    size = graph.shape[0]
    w = torch.zeros_like(graph)
    for i in range(size):
        for j in range(size):
            g = (graph[i, j] + e).sqrt() * (feats[j] - feats[i])
            w[i, j] = graph[i, j] * torch.linalg.vector_norm(g + e) ** (p - 2)
    alpha = 1.0 / (w.sum(1) + 2 * mu / p)
    beta = alpha * (2 * mu / p)
    if f_q is None:
        return alpha[:, None] * (w @ feats) + beta[:, None] * feats
    return alpha[:n, None] * (w[:n, n:] @ f_v)


def _head_gram(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """[H, dh, dh] Gram matrices of the output projection's per-head column blocks."""
    w_h = weight.view(weight.shape[0], heads, -1).permute(1, 0, 2)  # [H, d, dh]
    return w_h.transpose(1, 2) @ w_h


class PAdapterBranch(SublayerAdapter):
    """The p-adapter on one attention module's output projection (see the module docstring).

    Installed in an ``OutputAdapterWrapper`` around ``<attention>.output.dense``:
    ``forward(ctx, attn_out)`` gets the concatenated head contexts and the projected attention
    output, and reads the head-level tensors that :meth:`attach` hooks captured.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        bottleneck: int,
        *,
        variant: str = "paper",
        activation: str = "gelu",
        p_init: float = 2.0,
        p_range: tuple[float, float] = (1.0, 3.0),
        mu_init: float = 0.0,
        mu0: float = 0.1,
        eps: float = 1e-6,
        value_degree: str = "unit",
        cross_pool_nodes: int | None = None,
        p_param: str = "sigmoid",
        init: str = "identity",
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if variant == "code" and bottleneck % num_heads:
            raise ValueError(
                f"p-adapter variant='code' splits the bottleneck ({bottleneck}) into "
                f"{num_heads} heads; pick a bottleneck size divisible by the head count"
            )
        self.variant = variant
        self.num_heads = num_heads
        self.p_range = (float(p_range[0]), float(p_range[1]))
        self.mu0 = mu0
        self.eps = eps
        self.value_degree = value_degree
        self.cross_pool_nodes = cross_pool_nodes
        self.down = nn.Linear(dim, bottleneck)
        self.act = make_activation(activation)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        if variant == "code":
            self.gate = nn.Linear(dim, bottleneck)
        if init == "normal":  # the release: BLIP's init_weights, N(0, 0.02), zero biases
            for lin in (self.down, self.up, getattr(self, "gate", None)):
                if lin is not None:
                    nn.init.normal_(lin.weight, std=init_std)
                    nn.init.zeros_(lin.bias)
        self.p_param = p_param
        if p_param == "direct":  # the release: p is the parameter itself
            self.p_raw = nn.Parameter(torch.tensor(float(p_init)))
        else:
            lo, hi = self.p_range
            frac = (p_init - lo) / (hi - lo)
            self.p_raw = nn.Parameter(torch.tensor(math.log(frac / (1 - frac))))
        self.mu_raw = nn.Parameter(torch.tensor(float(mu_init) if variant == "paper" else 0.0))
        self._captured: dict[str, Any] = {}
        self._dense: list[nn.Linear] = []  # the host's output projection (not a submodule)

    # ------------------------------------------------------------------ parameters
    def p(self) -> torch.Tensor:
        """The current p (inside ``p_range``; ``p_param="direct"``: the parameter itself)."""
        if self.p_param == "direct":
            return self.p_raw
        lo, hi = self.p_range
        return lo + (hi - lo) * torch.sigmoid(self.p_raw)

    def mu(self) -> torch.Tensor:
        """The current mu (paper: clamped at 0; code: mu0 * (2 + tanh(m)))."""
        if self.variant == "code":
            return self.mu0 * (2 + torch.tanh(self.mu_raw))
        return self.mu_raw.clamp(min=0.0)

    # ------------------------------------------------------------------ capture
    def attach(self, attn_self: nn.Module, dense: nn.Linear) -> list[Any]:
        """Hook ``attn_self`` (the module with query/key/value) to capture this pass's tensors."""
        self._dense = [dense]
        cap = self._captured

        def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
            cap.clear()
            enc = kwargs.get("encoder_hidden_states")
            cap["cross"] = enc is not None
            if enc is not None and "encoder_attention_mask" in kwargs:
                cap["mask"] = kwargs.get("encoder_attention_mask")
            else:
                cap["mask"] = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)

        def post(module: nn.Module, args: tuple, output: Any) -> None:
            probs = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            cap["probs"] = probs if isinstance(probs, torch.Tensor) and probs.dim() == 4 else None

        def grab(key: str):
            def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
                cap[key] = output

            return hook

        handles = [
            attn_self.register_forward_pre_hook(pre, with_kwargs=True),
            attn_self.register_forward_hook(post),
        ]
        for key in ("query", "key", "value"):
            handles.append(getattr(attn_self, key).register_forward_hook(grab(key)))
        return handles

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, width = t.shape
        return t.float().view(b, n, self.num_heads, width // self.num_heads).transpose(1, 2)

    def _probs(self, cap: dict[str, Any], q: torch.Tensor) -> torch.Tensor:
        probs = cap.get("probs")
        if probs is not None:
            return probs.float()
        k = self._heads(cap["key"])
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        mask = cap.get("mask")
        if mask is not None:
            if mask.dtype == torch.bool:
                scores = scores.masked_fill(~mask, float("-inf"))
            else:
                scores = scores + mask.float()
        return scores.softmax(-1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cap = dict(self._captured)
        self._captured.clear()
        if "query" not in cap or "value" not in cap:
            raise RuntimeError(
                "p-adapter: the attention module's projections were not captured in this pass "
                "(is the output projection called without its attention module?)"
            )
        q, v = self._heads(cap["query"]), self._heads(cap["value"])
        probs = self._probs(cap, q)
        if probs.shape[-1] != v.shape[-2] or probs.shape[-2] != q.shape[-2]:
            raise RuntimeError(
                f"p-adapter: attention over {probs.shape[-1]} keys but {v.shape[-2]} values were "
                "projected in this pass (a key/value cache?); p-adapter needs every value: run "
                "generation with use_cache=False"
            )
        cross = bool(cap.get("cross"))
        if self.variant == "code":
            return y + self._code(probs, q, v, y, cross).to(y.dtype)
        u = y + self._paper_delta(probs, q, v, cross).to(y.dtype)
        return u + self.up(self.act(self.down(u.to(self.down.weight.dtype)))).to(y.dtype)

    def _pool(self, probs: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assign = pool_assignment(probs.shape[-1], self.cross_pool_nodes, probs.device)
        counts = assign.sum(0)
        return probs @ assign, (assign.T @ nodes) / counts[:, None]

    def _gram(self) -> torch.Tensor:
        """G_h = W_o^h^T W_o^h per head: [H, dh, dh] (Q^_i . V^_j = q_i G_h v_j^T).

        The host's output projection is frozen in every p-adapter setting, so G is computed once
        and reused while that weight is unchanged (same tensor, storage and version counter);
        a trainable weight (or inference mode) gets a fresh G in every pass.
        """
        src = self._dense[0].weight
        if (src.requires_grad and torch.is_grad_enabled()) or torch.is_inference_mode_enabled():
            return _head_gram(src.float(), self.num_heads)
        key = (id(src), src.data_ptr(), src._version, src.device, src.dtype)
        cached = getattr(self, "_gram_cache", None)
        if cached is None or cached[0] != key or cached[1] is not src:
            with torch.no_grad():
                self._gram_cache = (key, src, _head_gram(src.float(), self.num_heads))
        return self._gram_cache[2]

    def _paper_delta(
        self, M: torch.Tensor, q: torch.Tensor, v: torch.Tensor, cross: bool
    ) -> torch.Tensor:
        """alpha D^-1/2 Mbar D^-1/2 V^ + beta Q^ - M V^, projected by W_o (no bias): [B, n, d]."""
        if cross and self.cross_pool_nodes:
            M, v = self._pool(M, v)
        v = v.contiguous()  # one copy, then every product below reads it (or its transpose)
        weight = self._dense[0].weight.float()  # [d, H * dh]
        gram = self._gram()  # [H, dh, dh]
        heads, dh = self.num_heads, q.shape[-1]
        q_gram = q @ gram
        qq = (q_gram * q).sum(-1)  # ||Q^_i||^2
        vv = ((v @ gram) * v).sum(-1)  # ||V^_j||^2
        qv = q_gram @ v.transpose(-1, -2)  # Q^_i . V^_j
        eps = self.eps
        d_q = M.sum(-1).clamp_min(eps)
        unit = self.value_degree != "column"
        if unit:  # D_jj = 1: the value-side divisions are exact no-ops and skipped
            d_v = None
            inner = (qq / d_q)[..., None] + vv[..., None, :]
            inner = torch.addcmul(inner, qv, (2 / d_q.sqrt())[..., None], value=-1)
        else:
            d_v = M.sum(-2).clamp_min(eps)
            inner = (
                (qq / d_q)[..., None]
                + (vv / d_v)[..., None, :]
                - 2 * qv / (d_q[..., None] * d_v[..., None, :]).sqrt()
            )
        sq = M * inner
        p, mu = self.p(), self.mu()
        # (sq + eps)^((p - 2) / 2) as exp(e log(.)): one log shared by forward and both
        # gradients (base and p); the base is >= eps, so the log is finite
        m_bar = M * torch.exp(((p - 2) / 2) * torch.log(sq.clamp_min(0) + eps))
        alpha = 1.0 / (m_bar.sum(-1) / d_q + 2 * mu / p).clamp_min(eps)
        beta = (2 * mu / p) * alpha
        scaled = m_bar * (alpha / d_q.sqrt())[..., None]
        if d_v is not None:
            scaled = scaled / d_v.sqrt()[..., None, :]
        delta = (scaled - M) @ v + beta[..., None] * q  # [B, H, n, dh]
        b, _, n, _ = delta.shape
        return delta.transpose(1, 2).reshape(b, n, heads * dh) @ weight.T

    def _code(
        self, M: torch.Tensor, q: torch.Tensor, v: torch.Tensor, y: torch.Tensor, cross: bool
    ) -> torch.Tensor:
        """The released code's branch: W_up(GELU(W_gate h) * F') (see the module docstring)."""
        dense = self._dense[0]
        weight = dense.weight.float()
        bias = None if dense.bias is None else dense.bias.float()
        dt = self.down.weight.dtype

        def features(x: torch.Tensor) -> torch.Tensor:  # [B, H, t, dh] -> [B, H, t, r / H]
            b, _, t, _ = x.shape
            tokens = x.transpose(1, 2).reshape(b, t, -1)
            return self._heads(self.down(F.linear(tokens, weight, bias).to(dt)))

        if cross and self.cross_pool_nodes:  # the code's adaptive_avg_pool2d on both
            M = _adaptive_mean(M, self.cross_pool_nodes)
            v = _adaptive_mean(v.transpose(-1, -2), self.cross_pool_nodes).transpose(-1, -2)
        f_v = features(v)
        f_new = self.code_propagate(M, features(q) if cross else None, f_v)
        b, _, n, _ = f_new.shape
        f_new = f_new.transpose(1, 2).reshape(b, n, -1)
        gate = F.gelu(self.gate(y.to(dt)))
        return self.up(gate * f_new.to(dt))

    def code_propagate(
        self, M: torch.Tensor, f_q: torch.Tensor | None, f_v: torch.Tensor
    ) -> torch.Tensor:
        """F' = alpha W F_v (+ beta F in self-attention) for per-head node features
        ``[..., t, r / H]``; ``f_q`` None for self-attention (see :func:`code_reference`)."""
        e = self.eps
        p, mu = self.p(), self.mu()
        rows = f_v if f_q is None else f_q
        diff = f_v[..., None, :, :] - rows[..., :, None, :]  # [..., n, m, r / H]: F_j - F_i
        grad = (M + e).sqrt()[..., None] * diff + e
        w = M * torch.linalg.vector_norm(grad, dim=-1).pow(p - 2)
        alpha = 1.0 / (w.sum(-1) + 2 * mu / p)
        f_new = alpha[..., None] * (w @ f_v)
        if f_q is None:
            f_new = f_new + (alpha * (2 * mu / p))[..., None] * f_v
        return f_new


def _adaptive_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling of the last axis to ``size`` (torch's overlapping windows)."""
    lead = x.shape[:-1]
    return F.adaptive_avg_pool1d(x.reshape(-1, 1, x.shape[-1]), size).view(*lead, size)
