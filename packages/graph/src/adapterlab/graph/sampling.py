"""Neighbour sampling for node mini-batches, in plain torch over a CSR adjacency.

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, whose wheels are not on PyPI for
this torch; this sampler does the same job (uniform sampling without replacement, ``fanouts[k]``
neighbours per node at hop k, or all of them with ``None``). The batch nodes come first in the
returned node list; the returned edges are the sampled ones, relabelled, so a 2-propagation block
run on the subgraph gives the batch nodes exactly the full-graph result when nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["NeighborSampler"]


class NeighborSampler:
    """Sample the k-hop neighbourhood of seed nodes (``edge_index`` is source -> target)."""

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, fanouts: Sequence[int | None]):
        dst, src = edge_index[1], edge_index[0]
        order = torch.argsort(dst * num_nodes + src)
        self.col = src[order].contiguous()
        counts = torch.bincount(dst, minlength=num_nodes)
        self.rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.rowptr[1:] = torch.cumsum(counts, 0)
        self.num_nodes = num_nodes
        self.fanouts = list(fanouts)

    def _neighbours(
        self, frontier: torch.Tensor, fanout: int | None, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sources, targets) of the sampled in-edges of ``frontier`` (global ids)."""
        start, deg = self.rowptr[frontier], self.rowptr[frontier + 1] - self.rowptr[frontier]
        seg = torch.repeat_interleave(torch.arange(len(frontier)), deg)
        seg_start = torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
        rank = torch.arange(int(deg.sum())) - seg_start  # position within each node's list
        pos = start[seg] + rank
        if fanout is not None and len(pos):
            # a random order within each node's segment; segments stay in place
            keys = seg.double() + torch.rand(len(pos), generator=gen, dtype=torch.float64)
            perm = torch.argsort(keys)
            keep = rank < fanout  # rank in the shuffled order
            seg, pos = seg[perm][keep], pos[perm][keep]
        return self.col[pos], frontier[seg]

    def sample(
        self, seeds: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (node ids, seeds first; local edge_index of the sampled edges)."""
        seeds = seeds.long()
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[seeds] = torch.arange(len(seeds))
        nodes = [seeds]
        count = len(seeds)
        edges_src, edges_dst = [], []
        frontier = seeds
        for fanout in self.fanouts:
            src, dst = self._neighbours(frontier, fanout, generator)
            edges_src.append(src)
            edges_dst.append(dst)
            new = torch.unique(src[local[src] < 0])
            local[new] = torch.arange(count, count + len(new))
            count += len(new)
            nodes.append(new)
            frontier = new
            if not len(frontier):
                break
        src, dst = torch.cat(edges_src), torch.cat(edges_dst)
        pairs = torch.unique(torch.stack([local[src], local[dst]]), dim=1)
        return torch.cat(nodes), pairs
