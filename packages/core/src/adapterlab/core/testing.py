"""Tiny, seeded backbones for tests: a toy transformer, RoBERTa, AST, an open_clip ViT and two
decoder LMs (Llama with grouped KV heads and RoPE; GPT-2 with ``Conv1D`` layers).

Shared by the test suites of every adapterlab package (all randomly initialised; no downloads).
"""

from __future__ import annotations

import torch
from torch import nn


class ToyBlock(nn.Module):
    """An open_clip-style pre-LN block: ``attn`` (nn.MultiheadAttention) and ``mlp``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class ToyTransformer(nn.Module):
    """Embeds ``[B, T, F]`` features, prepends CLS, runs two blocks, returns ``[B, T+1, D]``."""

    def __init__(self, features: int = 6, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(features, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList([ToyBlock(dim), ToyBlock(dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.embed(x)], dim=1)
        for block in self.transformer.resblocks:
            h = block(h)
        return h


class Classifier(nn.Module):
    """Backbone + linear ``head`` on pooled features; returns logits."""

    def __init__(self, backbone: nn.Module, dim: int, pool: str, classes: int = 3) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = pool
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)
        if self.pool == "hf":
            feats = out.last_hidden_state.mean(1)
        elif self.pool == "causal":  # per-position logits [B, T, classes]
            feats = out.last_hidden_state
        elif self.pool == "tokens":
            feats = out.mean(1)
        else:
            feats = out
        return self.head(feats)


def _token_ids() -> torch.Tensor:
    return torch.randint(3, 50, (4, 7), generator=torch.Generator().manual_seed(123))


def build_backbone(kind: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A seeded tiny classifier of ``kind`` and a matching input batch."""
    torch.manual_seed(seed)
    if kind == "toy":
        model = Classifier(ToyTransformer(), 16, "tokens")
        x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(123))
    elif kind == "roberta":
        from transformers import RobertaConfig, RobertaModel

        cfg = RobertaConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=40,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        model = Classifier(RobertaModel(cfg, add_pooling_layer=False), 16, "hf")
        x = _token_ids()
    elif kind == "ast":
        from transformers import ASTConfig, ASTModel

        cfg = ASTConfig(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            num_mel_bins=32,
            max_length=32,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        model = Classifier(ASTModel(cfg), 16, "hf")
        x = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(123))
    elif kind == "openclip":
        import open_clip

        clip = open_clip.CLIP(
            embed_dim=16,
            vision_cfg={
                "image_size": 32,
                "layers": 2,
                "width": 32,
                "patch_size": 16,
                "head_width": 16,
            },
            text_cfg={"context_length": 8, "vocab_size": 50, "width": 16, "heads": 2, "layers": 1},
        )
        model = Classifier(clip.visual, 16, "pooled")
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(123))
    elif kind == "llama":
        from transformers import LlamaConfig, LlamaModel

        cfg = LlamaConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
        model = Classifier(LlamaModel(cfg), 16, "causal")
        x = _token_ids()
    elif kind == "gpt2":
        from transformers import GPT2Config, GPT2Model

        cfg = GPT2Config(
            vocab_size=50,
            n_embd=16,
            n_layer=2,
            n_head=2,
            n_positions=64,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=1,
            eos_token_id=2,
        )
        model = Classifier(GPT2Model(cfg), 16, "causal")
        x = _token_ids()
    else:  # pragma: no cover
        raise ValueError(kind)
    return model.eval(), x


BACKBONES = ["toy", "roberta", "ast", "openclip", "llama", "gpt2"]
DECODERS = ("llama", "gpt2")
