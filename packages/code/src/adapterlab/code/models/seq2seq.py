"""Encoder + Transformer decoder for code summarization / refinement (CodeXGLUE's baseline).

As in CodeXGLUE's ``Seq2Seq`` (``Code-Text/code-to-text/code/model.py``): the target tokens are
embedded by the *encoder's* embedding layer, an ``nn.TransformerDecoder`` attends to the encoder
output, ``tanh(dense(.))`` follows, and the output projection is tied to the encoder's word
embeddings; the loss is cross-entropy on the shifted target over non-padding positions.
CodeXGLUE uses 6 decoder layers with the encoder's width and head count; the layer count and
the feed-forward size are parameters here (the offline demo keeps 6 layers, narrows the FFN).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Seq2Seq"]


class Seq2Seq(nn.Module):
    """Encoder-decoder with a tied output layer; ``generate`` decodes greedily or by beam."""

    def __init__(
        self,
        encoder: nn.Module,
        *,
        decoder_layers: int = 6,
        decoder_ffn: int | None = None,
        dropout: float = 0.1,
        sos_id: int,
        eos_id: int,
        pad_id: int,
    ) -> None:
        super().__init__()
        cfg = encoder.config
        self.encoder = encoder
        layer = nn.TransformerDecoderLayer(
            d_model=cfg.hidden_size,
            nhead=cfg.num_attention_heads,
            dim_feedforward=decoder_ffn or cfg.intermediate_size,
            dropout=dropout,
            batch_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=decoder_layers)
        self.output_dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.sos_id, self.eos_id, self.pad_id = sos_id, eos_id, pad_id

    def _word_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def encode(self, source_ids: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        """Encoder states ``(B, S, H)``."""
        return self.encoder(input_ids=source_ids, attention_mask=source_mask)[0]

    def decoder_states(
        self, target_ids: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor
    ) -> torch.Tensor:
        """Decoder outputs ``(B, T, H)`` for every target prefix (causally masked)."""
        length = target_ids.shape[1]
        causal = torch.triu(
            torch.ones(length, length, dtype=torch.bool, device=target_ids.device), diagonal=1
        )
        embedded = self.encoder.embeddings(input_ids=target_ids)
        return self.decoder(
            embedded,
            memory,
            tgt_mask=causal,
            memory_key_padding_mask=~source_mask.bool(),
        )

    def project(self, states: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of decoder states: ``tanh(dense(.))`` then the tied embeddings."""
        return F.linear(torch.tanh(self.output_dense(states)), self._word_embeddings().weight)

    def decode(
        self,
        target_ids: torch.Tensor,
        memory: torch.Tensor,
        source_mask: torch.Tensor,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Vocabulary logits ``(B, T, V)`` for every target prefix (causally masked);
        ``last_only``: ``(B, 1, V)`` for the last position only (decoding needs no more, and the
        vocabulary projection is most of a decoding step's cost)."""
        states = self.decoder_states(target_ids, memory, source_mask)
        return self.project(states[:, -1:] if last_only else states)

    def forward(
        self,
        source_ids: torch.Tensor,
        source_mask: torch.Tensor,
        target_ids: torch.Tensor,
        target_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Mean cross-entropy of predicting ``target_ids[:, 1:]`` from the prefixes (only the
        non-padding positions are projected onto the vocabulary)."""
        memory = self.encode(source_ids, source_mask)
        states = self.decoder_states(target_ids, memory, source_mask)
        active = target_mask[:, 1:].bool()
        logits = self.project(states[:, :-1][active])
        return F.cross_entropy(logits, target_ids[:, 1:][active])

    @torch.no_grad()
    def generate(
        self,
        source_ids: torch.Tensor,
        source_mask: torch.Tensor,
        max_length: int,
        beam_size: int = 1,
        min_length: int = 0,
    ) -> torch.Tensor:
        """Token ids ``(B, max_length)`` after the start token, padded with ``pad_id`` after the
        end token (which is dropped). ``beam_size`` > 1: beam search per example, the best
        finished hypothesis by summed log-probability (as CodeXGLUE's ``Beam``). The end token
        is not allowed before ``min_length`` tokens (0: CodeXGLUE, an empty output is possible)."""
        memory = self.encode(source_ids, source_mask)
        if beam_size <= 1:
            return self._greedy(memory, source_mask, max_length, min_length)
        rows = [
            self._beam(memory[i : i + 1], source_mask[i : i + 1], max_length, beam_size, min_length)
            for i in range(source_ids.shape[0])
        ]
        return torch.stack(rows)

    def _pad(self, tokens: list[int], max_length: int, device: torch.device) -> torch.Tensor:
        if self.eos_id in tokens:
            tokens = tokens[: tokens.index(self.eos_id)]
        tokens = tokens[:max_length] + [self.pad_id] * (max_length - len(tokens[:max_length]))
        return torch.tensor(tokens, dtype=torch.long, device=device)

    def _next_logits(
        self, ids: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor, min_length: int
    ) -> torch.Tensor:
        logits = self.decode(ids, memory, source_mask, last_only=True)[:, -1]
        if ids.shape[1] - 1 < min_length:  # tokens generated so far
            logits = logits.clone()
            logits[:, self.eos_id] = float("-inf")
        return logits

    def _greedy(
        self, memory: torch.Tensor, source_mask: torch.Tensor, max_length: int, min_length: int = 0
    ) -> torch.Tensor:
        batch = memory.shape[0]
        ids = torch.full((batch, 1), self.sos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        for _ in range(max_length):
            step = self._next_logits(ids, memory, source_mask, min_length).argmax(-1)
            step = torch.where(done, torch.full_like(step, self.eos_id), step)
            ids = torch.cat([ids, step[:, None]], dim=1)
            done |= step == self.eos_id
            if bool(done.all()):
                break
        return torch.stack([self._pad(row[1:].tolist(), max_length, memory.device) for row in ids])

    def _beam(
        self,
        memory: torch.Tensor,
        source_mask: torch.Tensor,
        max_length: int,
        beam_size: int,
        min_length: int = 0,
    ) -> torch.Tensor:
        device = memory.device
        beams: list[tuple[list[int], float]] = [([self.sos_id], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_length):
            ids = torch.tensor([b[0] for b in beams], device=device)
            logp = self._next_logits(
                ids,
                memory.expand(len(beams), -1, -1),
                source_mask.expand(len(beams), -1),
                min_length,
            ).log_softmax(-1)
            scores = logp + torch.tensor([b[1] for b in beams], device=device)[:, None]
            top = scores.flatten().topk(beam_size)
            vocab = logp.shape[-1]
            candidates = []
            for score, flat in zip(top.values.tolist(), top.indices.tolist()):
                beam, token = divmod(flat, vocab)
                seq = beams[beam][0] + [token]
                (finished if token == self.eos_id else candidates).append((seq, score))
            if len(finished) >= beam_size or not candidates:
                break
            beams = candidates
        best = max(finished or beams, key=lambda b: b[1])
        return self._pad(best[0][1:], max_length, device)
