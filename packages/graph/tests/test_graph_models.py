"""GNN blocks against dense references, equivariance, attention locality, sampler exactness."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from adapterlab.graph.models.fusion import FusionBlock
from adapterlab.graph.models.gat_block import GATBlock
from adapterlab.graph.models.mlp_block import MLPBlock
from adapterlab.graph.models.sage_block import SAGEBlock
from adapterlab.graph.sampling import NeighborSampler

torch.manual_seed(0)
EDGES = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2], [4, 5]])  # node 6 isolated
N = 7


def undirected(edges):
    return torch.cat([edges.T, edges.T.flip(0)], 1)


def dense_mean_adj(edge_index, n):
    a = torch.eye(n)
    a[edge_index[1], edge_index[0]] = 1.0  # row = target
    return a / a.sum(1, keepdim=True)


def rms(x, w, eps=1e-6):
    return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def test_sage_block_equals_dense_original_formula():
    block = SAGEBlock(5, hidden=4)
    block.norm.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(N, 5)
    ei = undirected(EDGES)
    a = dense_mean_adj(ei, N)
    h = rms(F.linear(F.silu(F.linear(x, block.lin1.weight)), block.lin2.weight), block.norm.weight)
    h = a @ h
    h = F.silu(F.linear(h, block.gnn1.weight))
    expected = a @ h
    torch.testing.assert_close(block(x, ei), expected, rtol=1e-5, atol=1e-6)
    assert all(
        not hasattr(m, "bias") or m.bias is None for m in (block.lin1, block.lin2, block.gnn1)
    )


@pytest.mark.parametrize("cls", [SAGEBlock, GATBlock, MLPBlock])
def test_blocks_are_permutation_equivariant(cls):
    block = cls(6, hidden=8).eval()
    x = torch.randn(N, 6)
    ei = undirected(EDGES)
    perm = torch.randperm(N)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    out = block(x, ei)
    out_p = block(x[perm], inv[ei])
    torch.testing.assert_close(out_p, out[perm], rtol=1e-5, atol=1e-6)


def test_gat_attends_to_neighbours_only_and_runs():
    block = GATBlock(6, hidden=16)
    x = torch.randn(N, 6, requires_grad=True)
    out = block(x, undirected(EDGES))
    out[4].sum().backward()  # node 4's 2-hop neighbourhood is {4, 5}
    touched = x.grad.abs().sum(1) > 0
    assert touched.tolist() == [False, False, False, False, True, True, False]
    with pytest.raises(ValueError, match="divisible"):
        GATBlock(6, hidden=10)


def test_mlp_block_ignores_the_graph():
    block = MLPBlock(6, hidden=8)
    x = torch.randn(N, 6)
    torch.testing.assert_close(
        block(x, undirected(EDGES)), block(x, torch.empty(2, 0, dtype=torch.long))
    )


def test_fusion_formula():
    f = FusionBlock(llm_dim=6, hidden=4)
    z, h = torch.randn(3, 4), torch.randn(3, 6)
    r = f.fuse2.weight @ F.silu(
        f.fuse1.weight @ torch.cat([f.g_lin.weight @ z.T, f.prompt_lin.weight @ h.T])
    )
    torch.testing.assert_close(f(z, h), r.T, rtol=1e-5, atol=1e-6)
    assert f.fuse1.out_features == 40 and f.project(f(z, h)).shape == (3, 6)


def test_sampler_full_fanout_gives_the_exact_full_graph_result():
    torch.manual_seed(1)
    n = 40
    ei = torch.randint(0, n, (2, 120))
    ei = torch.cat([ei, ei.flip(0)], 1)
    ei = torch.unique(ei[:, ei[0] != ei[1]], dim=1)
    block = SAGEBlock(5, hidden=4)
    x = torch.randn(n, 5)
    full = block(x, ei)
    seeds = torch.tensor([3, 17, 25])
    nodes, local = NeighborSampler(ei, n, [None, None]).sample(seeds)
    assert nodes[:3].tolist() == seeds.tolist()
    torch.testing.assert_close(block(x[nodes], local)[:3], full[seeds], rtol=1e-5, atol=1e-6)


def test_sampler_respects_fanout():
    n = 30
    hub = torch.stack([torch.arange(1, n), torch.zeros(n - 1, dtype=torch.long)])  # 29 -> node 0
    nodes, local = NeighborSampler(hub, n, [5]).sample(
        torch.tensor([0]), torch.Generator().manual_seed(0)
    )
    assert local.shape[1] == 5 and len(nodes) == 6 and (local[1] == 0).all()
