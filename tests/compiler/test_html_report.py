"""The HTML placement report: a well-formed, self-contained page with its three pictures, tiles coloured by the
layer holding most of them, links drawn by load, every name escaped, the same bytes for the same report, and
``cimc report --html`` writing it atomically from a real binary."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cimc.compiler import PipelineOptions, cli
from cimc.compiler.html_report import html_report, layer_colour
from cimc.compiler.pipeline import compile_binary
from cimc.runtime.binary import load_binary

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "models" / "digits_cnn.onnx"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}
ODD_NAME = "<x&y>"


@dataclass
class Node:
    """An element of a parsed page: its tag, attributes, children and the text directly inside it."""

    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        """Every element below this one with ``tag`` (and class ``cls``), in document order."""
        found = []
        for child in self.children:
            if child.tag == tag and (cls is None or child.attrs.get("class") == cls):
                found.append(child)
            found += child.find_all(tag, cls)
        return found

    def title(self) -> str:
        """The text of this element's ``<title>`` child (an SVG tooltip)."""
        return next(child.text for child in self.children if child.tag == "title")


class StrictParser(HTMLParser):
    """Builds the element tree, failing on an end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.open = [self.root]
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs})
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Node(tag, {key: value or "" for key, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1].tag == tag, f"</{tag}> closes <{self.open[-1].tag}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].text += data


def parse(page: str) -> Node:
    """The page's element tree; fails unless it is a complete, properly nested HTML document."""
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.doctype.lower() == "doctype html"
    assert [node.tag for node in parser.open] == ["#document"], "elements left open"
    return parser.root


def make_report(
    mesh: tuple[int, int] = (3, 4),
    torus: bool = False,
    faulty: tuple[tuple[int, int], ...] = ((1, 1),),
    groups: tuple[tuple[str, tuple[int, int], int], ...] = (
        (ODD_NAME, (0, 0), 4),
        (ODD_NAME, (0, 1), 4),
        ("conv2", (0, 1), 2),
        ("conv2", (0, 1), 2),
        ("conv2", (2, 3), 2),
    ),
    link_loads: list | None = None,
) -> dict[str, Any]:
    """A report in ``cimc.compiler.placement_report``'s schema for array groups ``(layer, tile, arrays)``."""
    layers: dict[str, dict[str, Any]] = {}
    per_tile: dict[tuple[int, int], dict[str, Any]] = {}
    for name, tile, arrays in groups:
        layer = layers.setdefault(
            name,
            {"name": name, "kind": "conv", "arrays": 0, "cell_utilization": 0.25, "replication": 1, "tiles": []},
        )
        layer["arrays"] += arrays
        layer["tiles"].append(list(tile))
        entry = per_tile.setdefault(tile, {"tile": list(tile), "arrays": 0, "groups": 0, "layers": []})
        entry["arrays"] += arrays
        entry["groups"] += 1
        if name not in entry["layers"]:
            entry["layers"].append(name)
    for layer in layers.values():
        layer["reduction_tile"] = layer["tiles"][0]
    loads = [[[0, 0], [0, 1], 300], [[0, 1], [0, 0], 100], [[0, 1], [1, 1], 50]] if link_loads is None else link_loads
    rows, cols = mesh
    return {
        "chip": "chip & <co>",
        "mesh": {"rows": rows, "cols": cols, "torus": torus},
        "faulty_tiles": [list(t) for t in faulty],
        "arrays": sum(arrays for _, _, arrays in groups),
        "tiles_used": len(per_tile),
        "tiles": rows * cols - len(faulty),
        "placement": {
            "status": "OPTIMAL",
            "solver": "cp-sat",
            "objective": 450,
            "bound": 450,
            "lower_bound": 400,
            "naive_objective": 900,
            "gap": 0.0,
        },
        "network": {
            "links": 34,
            "byte_hops": sum(load[2] for load in loads),
            "max_link_bytes": max((load[2] for load in loads), default=0),
            "mean_link_bytes": round(sum(load[2] for load in loads) / 34, 3),
            "busiest_link": loads[0][:2] if loads else None,
            "link_loads": loads,
        },
        "schedule": {
            "stages": [{"layer": name, "rounds": 8, "start": 8 * i} for i, name in enumerate(layers)],
            "latency_rounds": 8 * len(layers),
            "interval_rounds": 8,
            "bottleneck": next(iter(layers), None),
        },
        "per_tile": [per_tile[tile] for tile in sorted(per_tile)],
        "layers": list(layers.values()),
        "crossbar": {"digital_op_counts": {"graph.relu": 2}},
    }


def svgs(page: str) -> list[Node]:
    return parse(page).find_all("svg")


def tile_fills(svg: Node, cols: int) -> dict[tuple[int, int], str]:
    """Each tile's fill in the tile picture, whose tiles come in row-major order."""
    return {divmod(i, cols): rect.attrs["fill"] for i, rect in enumerate(svg.find_all("rect", "tile"))}


def test_the_page_is_well_formed_self_contained_and_has_three_pictures() -> None:
    page = html_report(make_report())
    root = parse(page)
    assert len(root.find_all("svg")) == 3
    assert not root.find_all("script") and not root.find_all("link") and not root.find_all("img")
    # nothing is fetched: no src or href anywhere, and the only URL is SVG's namespace name
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert page.count("http") == page.count('xmlns="http://www.w3.org/2000/svg"') == 3


def test_the_tile_grid_has_a_rect_per_tile_coloured_by_the_layer_with_most_groups_there() -> None:
    report = make_report()
    grid = svgs(html_report(report))[0]
    assert len(grid.find_all("rect", "tile")) == 3 * 4
    fills = tile_fills(grid, cols=4)
    # (0, 1) holds one group of ODD_NAME and two of conv2: conv2, the second layer, colours it
    assert fills[(0, 0)] == layer_colour(0)
    assert fills[(0, 1)] == fills[(2, 3)] == layer_colour(1)
    assert fills[(1, 1)] == "url(#hatch-tiles)"
    assert {fills[t] for t in fills if t not in {(0, 0), (0, 1), (2, 3), (1, 1)}} == {"#ffffff"}
    titles = [rect.title() for rect in grid.find_all("rect", "tile")]
    assert titles[1] == f"tile (0, 1): 8 arrays in 3 groups; most: conv2; {ODD_NAME} (1 groups), conv2 (2 groups)"
    assert titles[5] == "tile (1, 1): faulty, never used" and titles[2] == "tile (0, 2): unused"


def test_a_tile_takes_the_colour_of_the_layer_with_most_arrays_when_the_report_gives_them() -> None:
    report = make_report()
    # (0, 1): 4 arrays of ODD_NAME in one group against 2 + 2 of conv2 in two: a tie on arrays goes to the first
    report["per_tile"][1]["layer_arrays"] = {ODD_NAME: 4, "conv2": 4}
    for entry in report["per_tile"]:
        entry.setdefault("layer_arrays", {name: entry["arrays"] for name in entry["layers"]})
    grid = svgs(html_report(report))[0]
    assert tile_fills(grid, cols=4)[(0, 1)] == layer_colour(0)
    assert grid.find_all("rect", "tile")[1].title().endswith(f"{ODD_NAME} (4 arrays), conv2 (4 arrays)")


def test_every_name_is_escaped() -> None:
    page = html_report(make_report())
    assert ODD_NAME not in page and "chip & <co>" not in page
    assert "&lt;x&amp;y&gt;" in page and "chip &amp; &lt;co&gt;" in page
    root = parse(page)
    rows = root.find_all("tbody")[0].find_all("tr")
    assert [row.find_all("td")[0].text for row in rows] == [ODD_NAME, "conv2"]
    bars = svgs(page)[2]
    assert [text.text for text in bars.find_all("text")[::2]] == [ODD_NAME, "conv2"]


def test_the_same_report_gives_the_same_bytes_and_layers_keep_their_colours() -> None:
    report = make_report()
    page = html_report(report)
    assert html_report(copy.deepcopy(report)) == page
    assert report == make_report()  # the report is only read
    # a layer's colour is its place in the report: the same in the legend, the grid and the bars
    legend = [span.attrs.get("style") for span in parse(page).find_all("span", "swatch")]
    assert legend == [f"background: {layer_colour(0)}", f"background: {layer_colour(1)}", None]  # then: unused
    assert [bar.attrs["fill"] for bar in svgs(page)[2].find_all("rect", "bar")] == [layer_colour(0), layer_colour(1)]
    assert len({layer_colour(i) for i in range(64)}) == 64


def test_links_grow_with_their_load_and_a_missing_load_list_leaves_a_note() -> None:
    report = make_report()
    links = svgs(html_report(report))[1]
    assert len(links.find_all("rect", "router")) == 3 * 4
    drawn = links.find_all("g", "link")
    # lightest first: 50, 100, then the busiest (300 bytes) at full width and colour
    assert [g.title() for g in drawn] == [
        "(0, 1) → (1, 1): 50 bytes per sample",
        "(0, 1) → (0, 0): 100 bytes per sample",
        "(0, 0) → (0, 1): 300 bytes per sample",
    ]
    assert [g.attrs["stroke-width"] for g in drawn] == [f"{1 + 7 * n / 300:.2f}" for n in (50, 100, 300)]
    assert drawn[-1].attrs["stroke"] == "#b30000"
    # the two directions between (0, 0) and (0, 1) run side by side: 44-pixel tiles after a 26-pixel margin put
    # the routers' centres at x = 48 and 92 (y = 48), their squares' sides 11 pixels out, and each direction
    # 0.12 x 44 = 5.28 pixels to the right of its travel (y grows downwards)
    east, west = drawn[2].find_all("line")[0].attrs, drawn[1].find_all("line")[0].attrs
    assert (east["x1"], east["y1"], east["x2"], east["y2"]) == ("59.0", "53.3", "81.0", "53.3")
    assert (west["x1"], west["y1"], west["x2"], west["y2"]) == ("81.0", "42.7", "59.0", "42.7")
    del report["network"]["link_loads"]
    page = html_report(report)
    assert len(svgs(page)) == 2 and "no per-link loads (<code>network.link_loads</code>)" in page


def test_a_torus_link_that_wraps_round_leaves_one_side_and_enters_the_other() -> None:
    report = make_report(torus=True, link_loads=[[[0, 3], [0, 0], 64]])
    (wrap,) = svgs(html_report(report))[1].find_all("g", "link")
    assert wrap.attrs["stroke-dasharray"] == "6 3"
    out, back = (line.attrs for line in wrap.find_all("line"))
    # eastwards out of (0, 3) (centre x = 26 + 3.5 x 44 = 180) past the grid's east side (x = 202), and in again
    # from past its west side (x = 26) into (0, 0) (centre x = 48): 35 pixels (half a tile and half the margin) out
    # of the centres, from and to the routers' sides 11 pixels out; 5.28 pixels south of the centres' row
    assert [(line["x1"], line["x2"]) for line in (out, back)] == [("191.0", "215.0"), ("13.0", "37.0")]
    assert out["y1"] == out["y2"] == back["y1"] == back["y2"] == "53.3"


def test_a_report_without_traffic_still_draws_the_network() -> None:
    page = html_report(make_report(link_loads=[]))
    assert len(svgs(page)) == 3 and "No data crosses the network" in page


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "cnn.cimb"
    compile_binary(CNN, path, PipelineOptions(placement_effort=2.0))
    return path


def test_cli_writes_the_page_of_a_real_binary_atomically(
    binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    written: list[Path] = []
    atomic = cli.write_atomic

    def spy(path: str | Path, data: bytes | str) -> None:
        written.append(Path(path))
        atomic(path, data)

    monkeypatch.setattr(cli, "write_atomic", spy)
    target = tmp_path / "report.html"
    assert cli.main(["report", str(binary), "--html", str(target)]) == 0
    assert "Placement: " in capsys.readouterr().out  # the terminal report as before
    assert written == [target] and [p.name for p in tmp_path.iterdir()] == ["report.html"]
    page = target.read_text(encoding="utf-8")
    report = load_binary(binary).report
    assert page == html_report(report)
    (grid, _, bars) = svgs(page)
    assert len(grid.find_all("rect", "tile")) == 16 * 16  # the default chip
    # every array sits on tile (0, 0); conv3, the third layer, has most of them (24 of 56, in 3 of 7 groups)
    assert tile_fills(grid, cols=16)[(0, 0)] == layer_colour(2)
    assert [bar.title().split(":")[0] for bar in bars.find_all("g")] == ["conv1", "conv2", "conv3", "fc"]

    missing = tmp_path / "nowhere" / "report.html"
    assert cli.main(["report", str(binary), "--html", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cimc: error: ") and "does not exist" in err and len(err.strip().splitlines()) == 1
