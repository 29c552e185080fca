"""The placement report as one self-contained HTML page with pictures: ``cimc report model.cimb --html FILE``.

The page holds the summary of the terminal report, three inline SVG pictures (the tile grid coloured by layer, the
load on every network link, the arrays of every layer) and the table of layers. It needs nothing outside itself (no
scripts, fonts or network: inline CSS and SVG only), so it can be mailed or attached to a CI run, and the same
report always gives the same bytes. Every name from the model is escaped.

It reads the report's documented fields (``cimc.compiler.placement_report``), ``network.link_loads`` when the
report has it (else the link picture is replaced by a note), and ``per_tile[i].layer_arrays`` (``{layer: arrays}``)
when the report has it to colour a tile by the layer with most arrays there; without it, the layer with most array
groups there (from ``layers[i].tiles``) colours the tile.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from cimc.compiler.placement_report import LAYER_COLUMNS, layer_rows
from cimc.ir.target.chip import Mesh
from cimc.ir.target.network import Tile

#: Layers' colours: hues a golden angle (degrees) apart, so that neighbours in the list lie far apart on the colour
#: wheel, in two lightnesses; a layer's colour is fixed by its place in the report.
_GOLDEN_ANGLE = 137.508
_UNUSED_FILL = "#ffffff"
_FAULTY_FILL = "#c8c8c8"
#: Link colours run from the first (lightest load) to the second (the busiest link), as RGB.
_LIGHT_LINK = (253, 174, 97)
_HEAVY_LINK = (179, 0, 0)
_MAX_LINK_WIDTH = 8.0
#: A router's square in the link picture leaves this share of its tile's side free on every side; a link runs this
#: share of a tile's side to the right of the line between its routers' centres, so both directions show.
_ROUTER_INSET = 0.25
_LANE_OFFSET = 0.12
#: The widest side of the tile grid, in pixels, and the bounds on one tile's side.
_GRID_PIXELS = 880
_CELL_BOUNDS = (12, 44)
#: The bar chart: the longest bar, one layer's row, the names' column and the figures' column after the longest
#: bar, in pixels, and the characters of a name shown before it is cut short.
_BAR_PIXELS = 480
_BAR_ROW = 22
_LABEL_PIXELS = 220
_FIGURES_PIXELS = 260
_LABEL_CHARS = 30

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; max-width: 72em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { font-weight: 600; }
figure { margin: 1em 0; } figcaption { color: #555; margin-top: 0.4em; max-width: 60em; }
svg text { font-family: inherit; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; }
ul.legend li { display: flex; align-items: center; gap: 0.4em; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #888; }
.swatch.faulty { background: repeating-linear-gradient(45deg, #c8c8c8 0 3px, #888 3px 5px); }
p.note { color: #555; font-style: italic; }
""".strip()


def html_report(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    mesh = Mesh(**report["mesh"])
    faulty = {_tile(t) for t in report["faulty_tiles"]}
    colours = {layer["name"]: layer_colour(i) for i, layer in enumerate(report["layers"])}
    grid = _Grid(mesh, faulty)
    body = [
        f"<h1>Placement report: chip {_e(report['chip'])}</h1>",
        _summary(report, mesh, faulty),
        "<h2>Tiles by layer</h2>",
        _tile_figure(report, grid, colours),
        "<h2>Network link loads</h2>",
        _link_figure(report, grid),
        "<h2>Arrays per layer</h2>",
        _bar_figure(report, colours),
        "<h2>Layers on tiles</h2>",
        _layer_table(report),
    ]
    counts = report["crossbar"]["digital_op_counts"]
    if counts:
        ops = ", ".join(f"{_e(op)} &times;{n:,}" for op, n in counts.items())
        body.append(f"<p>Digital units: {ops}</p>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>cimc placement report: {_e(report['chip'])}</title>",
            f"<style>\n{_CSS}\n</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def layer_colour(index: int) -> str:
    """The fill of the ``index``-th layer of a report, as CSS ``hsl()``."""
    hue = (index * _GOLDEN_ANGLE) % 360
    return f"hsl({hue:.1f}, 65%, {58 if index % 2 else 46}%)"


# --- the page's parts ---------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    """``value`` as HTML text or attribute content, escaped."""
    return html.escape(str(value), quote=True)


def _tile(value: Iterable[int]) -> Tile:
    row, col = value
    return int(row), int(col)


def _summary(report: dict[str, Any], mesh: Mesh, faulty: set[Tile]) -> str:
    p, net = report["placement"], report["network"]
    naive = p["naive_objective"]
    saving = f" ({1 - p['objective'] / naive:.1%} below naive)" if naive else ""
    shape = f"{mesh.rows} &times; {mesh.cols} {'torus' if mesh.torus else 'mesh'}"
    busiest = net["busiest_link"]
    rows = [
        ("Chip", f"{_e(report['chip'])}: {shape}, {len(faulty):,} faulty tiles"),
        ("Arrays", f"{report['arrays']:,} on {report['tiles_used']:,} of {report['tiles']:,} usable tiles"),
        ("Placement", f"{_e(p['status'])} ({_e(p['solver'])})"),
        ("Traffic &times; hops", f"{p['objective']:,} bytes per sample{saving}"),
        ("Naive row-major", f"{naive:,}"),
        ("Lower bound", f"{p['lower_bound']:,} (CP-SAT bound {p['bound']:,}; gap to the better {p['gap']:.1%})"),
        (
            "Network",
            f"{net['links']:,} links; per link max {net['max_link_bytes']:,}, mean {net['mean_link_bytes']:,.1f} "
            f"bytes per sample" + (f"; busiest {_link_name(busiest[0], busiest[1])}" if busiest else ""),
        ),
    ]
    schedule = report["schedule"]
    if schedule["stages"]:
        rows.append(
            (
                "Schedule",
                f"{len(schedule['stages']):,} pipelined layer stages; one input takes "
                f"{schedule['latency_rounds']:,} array-read rounds, then a new input every "
                f"{schedule['interval_rounds']:,} (bottleneck: {_e(schedule['bottleneck'])})",
            )
        )
    cells = "\n".join(f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in rows)
    return f'<table class="summary">\n{cells}\n</table>'


def _link_name(src: Iterable[int], dst: Iterable[int]) -> str:
    return _e(f"{_tile(src)} → {_tile(dst)}")


class _Grid:
    """Where the tiles of a mesh sit in a picture: a square cell each, with a margin a torus' wrap links use."""

    def __init__(self, mesh: Mesh, faulty: set[Tile]) -> None:
        self.mesh = mesh
        self.faulty = faulty
        low, high = _CELL_BOUNDS
        self.cell = max(low, min(high, _GRID_PIXELS // max(mesh.rows, mesh.cols)))
        self.margin = self.cell // 2 + 4
        self.width = mesh.cols * self.cell + 2 * self.margin
        self.height = mesh.rows * self.cell + 2 * self.margin

    def tiles(self) -> list[Tile]:
        """Every tile, row-major."""
        return [(r, c) for r in range(self.mesh.rows) for c in range(self.mesh.cols)]

    def corner(self, tile: Tile) -> tuple[int, int]:
        return self.margin + tile[1] * self.cell, self.margin + tile[0] * self.cell

    def centre(self, tile: Tile) -> tuple[float, float]:
        x, y = self.corner(tile)
        return x + self.cell / 2, y + self.cell / 2

    def open_svg(self, label: str, hatch_id: str) -> list[str]:
        """The ``<svg>`` start tag, the hatching that marks faulty tiles and, where they fit, the row and column
        numbers."""
        parts = [
            _open_svg(self.width, self.height, label),
            f'<defs><pattern id="{hatch_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{_FAULTY_FILL}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>',
        ]
        if self.cell >= 20:
            numbers: list[tuple[float, float, str, int]]
            numbers = [(self.centre((0, c))[0], self.margin - 3, "middle", c) for c in range(self.mesh.cols)]
            numbers += [(self.margin - 3, self.centre((r, 0))[1] + 3, "end", r) for r in range(self.mesh.rows)]
            parts.append(
                '<g fill="#888" font-size="9">'
                + "".join(f'<text x="{x:g}" y="{y:g}" text-anchor="{a}">{n}</text>' for x, y, a, n in numbers)
                + "</g>"
            )
        return parts


def _tile_layers(report: dict[str, Any]) -> tuple[dict[Tile, dict[str, int]], str]:
    """How much of each layer every used tile holds, and in what unit: its arrays where the report says
    (``layer_arrays``), else its array groups (one entry of the layer's ``tiles`` per group)."""
    share: dict[Tile, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    entries = report["per_tile"]
    if entries and all("layer_arrays" in entry for entry in entries):
        for entry in entries:
            share[_tile(entry["tile"])].update(entry["layer_arrays"])
        return share, "arrays"
    for layer in report["layers"]:
        for tile in layer["tiles"]:
            share[_tile(tile)][layer["name"]] += 1
    return share, "groups"


def _tile_figure(report: dict[str, Any], grid: _Grid, colours: dict[str, str]) -> str:
    order = {name: i for i, name in enumerate(colours)}
    share, unit = _tile_layers(report)
    used = {_tile(entry["tile"]): entry for entry in report["per_tile"]}
    parts = grid.open_svg("the tile grid coloured by layer", "hatch-tiles")
    for tile in grid.tiles():
        x, y = grid.corner(tile)
        entry = used.get(tile)
        if tile in grid.faulty:
            fill, title = "url(#hatch-tiles)", f"tile {tile}: faulty, never used"
        elif entry is None:
            fill, title = _UNUSED_FILL, f"tile {tile}: unused"
        else:
            here = share[tile]
            top = min(here, key=lambda name: (-here[name], order.get(name, len(order))))
            fill = colours.get(top, _UNUSED_FILL)
            layers = ", ".join(f"{name} ({here[name]:,} {unit})" for name in entry["layers"])
            title = f"tile {tile}: {entry['arrays']:,} arrays in {entry['groups']:,} groups; most: {top}; {layers}"
        parts.append(
            f'<rect class="tile" x="{x}" y="{y}" width="{grid.cell}" height="{grid.cell}" fill="{fill}" '
            f'stroke="#999" stroke-width="1"><title>{_e(title)}</title></rect>'
        )
        if entry is not None and grid.cell >= 28:
            cx, cy = grid.centre(tile)
            parts.append(
                f'<text x="{cx:g}" y="{cy + 4:g}" text-anchor="middle" font-size="{grid.cell // 3}" '
                f'pointer-events="none">{entry["arrays"]:,}</text>'
            )
    parts.append("</svg>")
    legend = [
        *(f'<li><span class="swatch" style="background: {c}"></span>{_e(n)}</li>' for n, c in colours.items()),
        '<li><span class="swatch"></span>unused</li>',
        '<li><span class="swatch faulty"></span>faulty</li>',
    ]
    caption = (
        f"Each used tile has the colour of the layer with most {unit} on it and, where it fits, its array count; "
        "hover over a tile for its arrays and layers."
    )
    return _figure(parts, caption) + '\n<ul class="legend">\n' + "\n".join(legend) + "\n</ul>"


def _open_svg(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
    )


def _figure(svg_parts: list[str], caption: str) -> str:
    return "<figure>\n" + "\n".join(svg_parts) + f"\n<figcaption>{caption}</figcaption>\n</figure>"


def _link_figure(report: dict[str, Any], grid: _Grid) -> str:
    loads = report["network"].get("link_loads")
    if loads is None:
        return (
            '<p class="note">This report has no per-link loads (<code>network.link_loads</code>); '
            "recompile the model with this cimc to draw them.</p>"
        )
    parts = grid.open_svg("the load on every network link", "hatch-links")
    inset = grid.cell * _ROUTER_INSET
    for tile in grid.tiles():
        x, y = grid.corner(tile)
        fill = "url(#hatch-links)" if tile in grid.faulty else "#f4f4f4"
        parts.append(
            f'<rect class="router" x="{x + inset:g}" y="{y + inset:g}" width="{grid.cell - 2 * inset:g}" '
            f'height="{grid.cell - 2 * inset:g}" fill="{fill}" stroke="#bbb"><title>tile {tile}</title></rect>'
        )
    busiest = max((int(n) for _, _, n in loads), default=0)
    # lightest first, so that the busiest links are drawn on top
    for src, dst, size in sorted(loads, key=lambda load: (load[2], load[0], load[1])):
        parts.append(_link(grid, _tile(src), _tile(dst), int(size), busiest))
    parts.append("</svg>")
    if not loads:
        return _figure(parts, "No data crosses the network: every flow stays on its tile.")
    caption = (
        f"Bytes per sample on each directed link between neighbouring tiles (XY routes); width and colour grow with "
        f"the load, up to {busiest:,} bytes. A link's two directions run side by side, each on the right of its "
        "direction of travel; dashed: a torus link that wraps round to the opposite side. Hover over a link for its "
        "load."
    )
    return _figure(parts, caption)


def _link(grid: _Grid, src: Tile, dst: Tile, size: int, busiest: int) -> str:
    """One directed link as a line (two stubs leaving and entering the grid for a torus' wrap-around link)."""
    dy, dx = _step(dst[0] - src[0]), _step(dst[1] - src[1])
    ratio = size / busiest if busiest else 0.0
    width = 1 + (_MAX_LINK_WIDTH - 1) * ratio
    colour = "#" + "".join(f"{round(a + (b - a) * ratio):02x}" for a, b in zip(_LIGHT_LINK, _HEAVY_LINK))
    side = grid.cell * _LANE_OFFSET  # to the right of the direction of travel, in screen coordinates (y down)
    ox, oy = -dy * side, dx * side
    (x0, y0), (x1, y1) = grid.centre(src), grid.centre(dst)
    edge = grid.cell * (0.5 - _ROUTER_INSET)  # from a router's centre to its square's side
    neighbours = (dst[0] - src[0], dst[1] - src[1]) == (dy, dx)
    if neighbours:
        segments = [(x0 + dx * edge, y0 + dy * edge, x1 - dx * edge, y1 - dy * edge)]
    else:  # out of the grid's side and back in at the opposite one
        reach = (grid.cell + grid.margin) / 2
        segments = [
            (x0 + dx * edge, y0 + dy * edge, x0 + dx * reach, y0 + dy * reach),
            (x1 - dx * reach, y1 - dy * reach, x1 - dx * edge, y1 - dy * edge),
        ]
    lines = "".join(
        f'<line x1="{a + ox:.1f}" y1="{b + oy:.1f}" x2="{c + ox:.1f}" y2="{d + oy:.1f}"/>' for a, b, c, d in segments
    )
    dashes = "" if neighbours else ' stroke-dasharray="6 3"'
    return (
        f'<g class="link" stroke="{colour}" stroke-width="{width:.2f}"{dashes}>'
        f"<title>{_link_name(src, dst)}: {size:,} bytes per sample</title>{lines}</g>"
    )


def _step(difference: int) -> int:
    """The step along one axis of a link whose ends differ by ``difference``: -1, 0 or 1; a torus' wrap-around
    link (ends ``size - 1`` apart) steps the other way."""
    if abs(difference) <= 1:
        return difference
    return -1 if difference > 0 else 1


def _bar_figure(report: dict[str, Any], colours: dict[str, str]) -> str:
    layers = report["layers"]
    most = max((layer["arrays"] or 0 for layer in layers), default=0)
    parts = [_open_svg(_LABEL_PIXELS + _BAR_PIXELS + _FIGURES_PIXELS, _BAR_ROW * len(layers) + 8, "arrays per layer")]
    for i, layer in enumerate(layers):
        name, arrays = str(layer["name"]), layer["arrays"] or 0
        y = 4 + i * _BAR_ROW
        label = name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"
        bar = _BAR_PIXELS * arrays / most if most else 0.0
        utilization = layer["cell_utilization"] or 0
        parts.append(
            f"<g><title>{_e(name)}: {arrays:,} arrays, {utilization:.1%} of their cells hold weights</title>"
            f'<text x="{_LABEL_PIXELS - 6}" y="{y + 15}" text-anchor="end" font-size="13">{_e(label)}</text>'
            f'<rect class="bar" x="{_LABEL_PIXELS}" y="{y + 2}" width="{bar:.1f}" height="{_BAR_ROW - 6}" '
            f'fill="{colours[layer["name"]]}"/>'
            f'<text x="{_LABEL_PIXELS + bar + 6:.1f}" y="{y + 15}" font-size="13">'
            f"{arrays:,} arrays, {utilization:.1%} utilization</text></g>"
        )
    parts.append("</svg>")
    caption = "Arrays programmed per layer (replicas included), and the share of their cells that hold weights."
    return _figure(parts, caption)


def _layer_table(report: dict[str, Any]) -> str:
    header = "".join(f'<th class="num">{name}</th>' if a == "r" else f"<th>{name}</th>" for name, a in LAYER_COLUMNS)
    rows = []
    for row in layer_rows(report):
        cells = (
            f'<td class="num">{_e(cell)}</td>' if a == "r" else f"<td>{_e(cell)}</td>"
            for cell, (_, a) in zip(row, LAYER_COLUMNS)
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table>\n<caption>The tiles a layer's groups sit on; reduction: the tile that accumulates its partial "
        f"sums</caption>\n<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )
