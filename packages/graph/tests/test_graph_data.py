"""Loaders: the generic layout, edge normalisation, splits and every bad input's error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from adapterlab.graph.data import DataFormatError, load_dataset, synthesize_tag, write_generic
from adapterlab.graph.data.graphadapter_release import paper_split_masks
from adapterlab.graph.data.wordnet import parse_data_noun


def _write(tmp_path, nodes: str, edges: str, split: str | None = None):
    (tmp_path / "nodes.jsonl").write_text(nodes)
    (tmp_path / "edges.csv").write_text(edges)
    if split is not None:
        (tmp_path / "split.json").write_text(split)
    return tmp_path


GOOD = "".join(
    json.dumps({"id": i, "text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(4)
)


def test_synthetic_roundtrip(synth_data):
    d = synth_data
    assert (
        d.num_nodes == 60 and len(d.texts) == 60 and d.label_names == ["topic0", "topic1", "topic2"]
    )
    masks = torch.stack([d.train_mask, d.val_mask, d.test_mask])
    assert (masks.sum(0) == 1).all()  # every node in exactly one split
    src, dst = d.edge_index
    assert (src != dst).all()  # no self-loops
    pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs)  # undirected
    assert len(pairs) == d.edge_index.shape[1]  # no duplicates


def test_normalises_self_loops_and_duplicates(tmp_path):
    d = load_dataset(_write(tmp_path, GOOD, "src,dst,w\n0,1,x\n1,0,y\n2,2,z\n0,1,q\n2,3,r\n"))
    assert d.edge_stats == {"self_loops": 1, "duplicates": 2, "undirected_edges": 2}
    assert d.edge_index.shape == (2, 4)


def test_default_split_is_seeded_60_20_20(tmp_path):
    nodes = "".join(json.dumps({"id": i, "text": "x", "label": "a"}) + "\n" for i in range(10))
    root = _write(tmp_path, nodes, "src,dst\n")
    a, b = load_dataset(root, seed=3), load_dataset(root, seed=3)
    assert torch.equal(a.train_mask, b.train_mask)
    assert (int(a.train_mask.sum()), int(a.val_mask.sum()), int(a.test_mask.sum())) == (6, 2, 2)


def test_split_json_is_used(tmp_path):
    d = load_dataset(
        _write(tmp_path, GOOD, "src,dst\n", '{"train":[0,1],"val":[2],"test":[3],"x":1}')
    )
    assert d.train_mask.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("nodes", "edges", "split", "message"),
    [
        (GOOD, "src,dst\n0,1\n1,9\n", None, r"edges.csv:3: edge \(1, 9\) points outside"),
        (GOOD, "src,dst\n0,-1\n", None, "edges.csv:2: edge"),
        (GOOD, "a,b\n0,1\n", None, "edges.csv:1: header must name"),
        (GOOD, "src,dst\n0,x\n", None, "edges.csv:2: expected two integer ids"),
        (
            GOOD.replace('"label": "a"', '"lab": "a"', 1),
            "src,dst\n",
            None,
            "nodes.jsonl:1: missing 'label'",
        ),
        (
            GOOD.replace('"text": "t2"', '"text": "  "'),
            "src,dst\n",
            None,
            "nodes.jsonl:3: node 2 has an empty text",
        ),
        (GOOD + "{bad json\n", "src,dst\n", None, "nodes.jsonl:5: malformed JSON"),
        ("", "src,dst\n", None, "the graph is empty"),
        (GOOD.replace('"id": 3', '"id": 7'), "src,dst\n", None, "ids must be 0..3"),
        (
            GOOD,
            "src,dst\n",
            '{"train":[0],"val":[9],"test":[]}',
            "split.json: 'val' holds ids outside",
        ),
        (GOOD, "src,dst\n", '{"train":[0]', "split.json: malformed JSON"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, nodes, edges, split, message):
    with pytest.raises(DataFormatError, match=message):
        load_dataset(_write(tmp_path, nodes, edges, split))


def test_unknown_label_is_reported(tmp_path):
    from adapterlab.graph.data.generic import load_generic

    with pytest.raises(DataFormatError, match=r"nodes.jsonl:2: unknown label 'b'"):
        load_generic(_write(tmp_path, GOOD, "src,dst\n"), label_names=["a"])


def test_unknown_layout_and_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="unknown dataset layout"):
        load_dataset(tmp_path)
    with pytest.raises(DataFormatError, match="no such dataset folder"):
        load_dataset(tmp_path / "nope")


def test_graphadapter_release_layout_and_paper_split(tmp_path):
    np.save(tmp_path / "x_text.npy", np.array(["a b", "c d", "e f"]))
    np.save(tmp_path / "edge_index.npy", np.array([[0, 1], [1, 2]]))
    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    d = load_dataset(tmp_path, seed=2)
    assert d.texts == ["a b", "c d", "e f"] and d.edge_index.shape == (2, 4)
    draws = np.random.RandomState(2).randint(0, 100, (3,))
    assert d.train_mask.tolist() == (draws < 10).tolist()
    tr, va, te = paper_split_masks(1000, 0)
    assert abs(int(tr.sum()) - 100) < 30 and abs(int(te.sum()) - 800) < 40


def test_wordnet_parser_reads_wndb_lines(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(
        "  1 This is a licence line\n"
        "00001740 03 n 01 entity 0 001 ~ 00001930 n 0000 | that which exists  \n"
        "00001930 05 n 02 physical_entity 0 animal(a) 1 002 @ 00001740 n 0000 @i 00000001 n 0000"
        " | an entity that has physical existence  \n"
    )
    syn = parse_data_noun(path)
    assert syn[1930].lexname == "noun.animal" and syn[1930].hypernyms == [1740, 1]
    assert syn[1930].text == "physical entity, animal: an entity that has physical existence"
    path.write_text("00001740 03 n zz\n")
    with pytest.raises(DataFormatError, match="data.noun:1"):
        parse_data_noun(path)


def test_write_generic_roundtrip(tmp_path):
    write_generic(tmp_path, ["x y", "z"], ["b", "a"], np.array([[0, 1]]), None)
    d = load_dataset(tmp_path)
    assert d.label_names == ["a", "b"] and d.y.tolist() == [1, 0]


def test_synth_is_homophilous(tmp_path):
    d = load_dataset(synthesize_tag(tmp_path, num_nodes=80, num_classes=4, homophily=0.9))
    src, dst = d.edge_index
    assert (d.y[src] == d.y[dst]).float().mean() > 0.7
