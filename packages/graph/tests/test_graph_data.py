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
    assert d.edge_stats == {"rows": 5, "self_loops": 1, "duplicates": 2, "undirected_edges": 2}
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
    from adapterlab.core.engine import DataFileError

    with pytest.raises(DataFileError, match=message):
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
    n = 60
    np.save(tmp_path / "x_text.npy", np.array([f"t{i} x" for i in range(n)]))
    np.save(tmp_path / "edge_index.npy", np.array([[0, 1, 5], [1, 2, 6]]))  # (2, E): PyG's
    np.save(tmp_path / "y.npy", np.arange(n) % 2)
    d = load_dataset(tmp_path, seed=2)
    assert d.texts[:2] == ["t0 x", "t1 x"] and d.edge_index.shape == (2, 6)
    assert d.edge_stats["rows"] == 3
    draws = np.random.RandomState(2).randint(0, 100, (n,))
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
    write_generic(tmp_path, ["x y", "z", "w"], ["b", "a", "b"], np.array([[0, 1]]),
                  {"train": [0], "val": [1], "test": [2]})  # fmt: skip
    d = load_dataset(tmp_path)
    assert d.label_names == ["a", "b"] and d.y.tolist() == [1, 0, 1]


def test_synth_is_homophilous(tmp_path):
    d = load_dataset(synthesize_tag(tmp_path, num_nodes=80, num_classes=4, homophily=0.9))
    src, dst = d.edge_index
    assert (d.y[src] == d.y[dst]).float().mean() > 0.7


def _write_ogb(root, n=12, labels=None, edges="0,1\n1,2\n3,4\n", titleabs=None):
    """A tiny ogbn-arxiv folder in OGB's raw layout (gzipped CSVs) plus titleabs.tsv."""
    import gzip

    labels = labels if labels is not None else [str(i % 3) for i in range(n)]
    files = {
        "raw/edge.csv.gz": edges,
        "raw/node-label.csv.gz": "".join(f"{v}\n" for v in labels),
        "mapping/nodeidx2paperid.csv.gz": "node idx,paper id\n"
        + "".join(f"{i},{100 + i}\n" for i in range(n)),
        "split/time/train.csv.gz": "".join(f"{i}\n" for i in range(0, n // 2)),
        "split/time/valid.csv.gz": "".join(f"{i}\n" for i in range(n // 2, 3 * n // 4)),
        "split/time/test.csv.gz": "".join(f"{i}\n" for i in range(3 * n // 4, n)),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.write(text)
    (root / "titleabs.tsv").write_text(
        titleabs or "".join(f"{100 + i}\ttitle {i}\tabstract {i}\n" for i in range(n))
    )
    return root


def test_ogbn_arxiv_uses_the_release_split_when_present(tmp_path):
    root = _write_ogb(tmp_path)
    d = load_dataset(root)
    assert (
        d.split_name == "ogb-time"
        and d.train_mask[:6].all()
        and d.texts[1] == "title 1: abstract 1"
    )
    np.save(root / "train.npy", np.array([0, 1, 2, 3]))
    np.save(root / "vaild.npy", np.array([4, 5]))  # sic, as the release names it
    np.save(root / "test.npy", np.array([6, 7, 8]))
    d = load_dataset(root)
    assert d.split_name == "graphadapter-release"
    assert d.train_mask.nonzero().view(-1).tolist() == [0, 1, 2, 3]
    assert d.split_sizes == {"train": 4, "val": 2, "test": 3}


def test_titleabs_reads_quoted_fields_with_tabs_and_newlines_as_pandas(tmp_path):
    rows = "".join(f"{100 + i}\ttitle {i}\tabstract {i}\n" for i in range(1, 12))
    quoted = '100\t"a\ttabbed title"\t"an abstract\nover two lines"\n'
    d = load_dataset(_write_ogb(tmp_path, titleabs=quoted + rows))
    assert d.texts[0] == "a\ttabbed title: an abstract\nover two lines"


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({5: "nan"}, r"node-label.csv:6: non-integer value"),
        ({2: "-1"}, r"node-label.csv: node 2 has label -1, outside \[0, 3\)"),
    ],
)
def test_ogbn_bad_labels_are_refused(tmp_path, labels, message):
    values = [str(i % 3) for i in range(12)]
    for i, v in labels.items():
        values[i] = v
    with pytest.raises(DataFormatError, match=message):
        load_dataset(_write_ogb(tmp_path, labels=values))


def test_ogbn_edge_rows_must_be_pairs(tmp_path):
    """A 3-column edge file was reshaped into extra edges: now refused, naming the line."""
    with pytest.raises(DataFormatError, match=r"edge.csv:2: expected 2 column\(s\), got 3"):
        load_dataset(_write_ogb(tmp_path, edges="0,1\n1,2,7\n"))
    d = load_dataset(_write_ogb(tmp_path, edges="0,1\n1,0\n2,3\n4,4\n"))
    assert d.edge_stats == {"rows": 4, "self_loops": 1, "duplicates": 1, "undirected_edges": 2}


def _write_release(root, y, edges=None, n=40):
    np.save(root / "x_text.npy", np.array([f"text {i}" for i in range(n)]))
    np.save(root / "edge_index.npy", np.array([[0, 1], [1, 2]]) if edges is None else edges)
    np.save(root / "y.npy", y)
    return root


def test_release_labels_nan_or_out_of_range_are_refused(tmp_path):
    y = (np.arange(40) % 2).astype(np.float64)
    y[7] = np.nan  # became -9223372036854775808 before
    with pytest.raises(DataFormatError, match=r"y.npy: node 7 has label nan, not an integer"):
        load_dataset(_write_release(tmp_path, y))
    y = np.arange(40) % 2
    y[3] = -1
    with pytest.raises(DataFormatError, match=r"y.npy: node 3 has label -1, outside \[0, 2\)"):
        load_dataset(_write_release(tmp_path, y))


def test_declared_unlabelled_nodes_leave_every_split(tmp_path):
    y = np.arange(40) % 2
    y[:10] = -1
    d = load_dataset(_write_release(tmp_path, y), allow_unlabelled=True)
    assert d.unlabelled == 10
    for mask in (d.train_mask, d.val_mask, d.test_mask):
        assert not mask[:10].any()
    nodes = GOOD.replace('"label": "a"', '"label": null', 1)
    split = '{"train":[0,1],"val":[2],"test":[3]}'
    with pytest.raises(DataFormatError, match=r"nodes.jsonl:1: node 0 has no label"):
        load_dataset(_write(tmp_path, nodes, "src,dst\n", split))
    d = load_dataset(_write(tmp_path, nodes, "src,dst\n", split), allow_unlabelled=True)
    assert d.y.tolist() == [-1, 1, 0, 1] and d.train_mask.tolist() == [False, True, False, False]


@pytest.mark.parametrize("empty", ["val", "test"])
def test_empty_val_or_test_split_is_refused(tmp_path, empty):
    split = {"train": [0, 1], "val": [2], "test": [3]}
    split[empty] = []
    with pytest.raises(DataFormatError, match=rf"split.json: the '{empty}' split has no labelled"):
        load_dataset(_write(tmp_path, GOOD, "src,dst\n", json.dumps(split)))


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        (np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]]), r"expected a \(2, E\) or \(E, 2\) array"),
        (np.arange(6), r"expected a \(2, E\) or \(E, 2\) array"),
        (np.array([[0.0, 1.5], [1.0, 2.0], [3.0, 4.0]]), r"entry \(0, 1\) = 1.5 is not an integer"),
    ],
)
def test_release_edge_arrays_are_never_reshaped_silently(tmp_path, edges, message):
    with pytest.raises(DataFormatError, match=message):
        load_dataset(_write_release(tmp_path, np.arange(40) % 2, edges))


def test_release_edge_index_is_read_as_pyg_2_by_e(tmp_path):
    """A (2, 2) array is the original's edge_index (2, E): edges (0, 3) and (1, 4)."""
    d = load_dataset(_write_release(tmp_path, np.arange(40) % 2, np.array([[0, 1], [3, 4]])))
    pairs = set(zip(*d.edge_index.tolist(), strict=True))
    assert pairs == {(0, 3), (3, 0), (1, 4), (4, 1)} and d.edge_stats["rows"] == 2


def test_non_utf8_nodes_file_names_file_and_line(tmp_path):
    """A raw UnicodeDecodeError before: now the core's one-line DataFileError."""
    from adapterlab.core.engine import DataFileError

    root = _write(tmp_path, GOOD, "src,dst\n")
    (root / "nodes.jsonl").write_bytes(
        GOOD.encode() + b'{"id": 4, "text": "caf\xe9", "label": "a"}\n'
    )
    with pytest.raises(DataFileError, match=r"nodes.jsonl:5 \(byte \d+\): ") as info:
        load_dataset(root)
    assert info.value.line == 5 and len(str(info.value).splitlines()) == 1


def test_truncated_ogb_gzip_names_the_file(tmp_path):
    """EOFError from a truncated .csv.gz before: now one line naming the file."""
    from adapterlab.core.engine import DataFileError

    root = _write_ogb(tmp_path, n=200, edges="".join(f"{i},{i + 1}\n" for i in range(199)))
    path = root / "raw" / "edge.csv.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataFileError, match=r"edge.csv.gz: truncated gzip file"):
        load_dataset(root)
