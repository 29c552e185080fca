"""The placement report of a compiled model: where the arrays went, how good that is, and what the network carries.

Built once at compile time from the placed module (``placement_report``), stored as JSON in the binary's
``report`` section, and read back by ``cimc report`` (``format_placement_report``), so a binary explains itself
with no model file around. Schema (all figures per inference and input sample):

- ``chip``: name; ``mesh``: ``{rows, cols, torus}``; ``faulty_tiles``: ``[[row, col], ...]``; ``arrays``: arrays
  programmed; ``tiles_used``; ``tiles``: usable tiles of the chip;
- ``placement``: ``status`` (OPTIMAL, FEASIBLE or the heuristic that produced it), ``solver``, ``objective``
  (bytes x hops), ``bound`` (CP-SAT's best bound, 0 when it has none), ``lower_bound`` (each layer's traffic star
  placed alone), ``naive_objective`` (the same groups filled row-major), ``gap`` ((objective - the better of the
  two bounds) / objective, 0 when the objective is 0); no wall time, so that compiling twice gives the same bytes;
- ``network``: ``links`` (in the mesh), ``byte_hops`` (= the objective), ``max_link_bytes``, ``mean_link_bytes``
  (over every link, idle ones included), ``busiest_link`` (``[[row, col], [row, col]]`` or null), ``link_loads``
  (``[[from_row, from_col], [to_row, to_col], bytes]`` for every link that carries traffic, in link order): the
  flows ``place`` recorded, each on its route (``cimc.ir.target.network.link_loads``, as timing loads them);
- ``schedule``: the static layer pipeline: ``stages`` (one per crossbar layer in execution order: ``layer``,
  ``rounds`` (array-read rounds per sample: input vectors x bit planes / replication), ``start`` (its first round
  for one input when the layers run one after another)), ``latency_rounds`` (one input through every stage),
  ``interval_rounds`` (steady state: consecutive inputs overlap across stages, so the slowest stage sets the pace)
  and ``bottleneck`` (that stage's layer). Cycles and seconds follow from the chip's timing (the simulator's job);
- ``per_tile``: one object per used tile in tile order: ``tile`` ([row, col]), ``arrays``, ``groups``, ``layers``,
  ``layer_arrays`` (``{layer: arrays}`` on that tile);
- ``layers``: the crossbar report's layers (``cimc.compiler.crossbar_report.report_json``) each with ``tiles``
  ([[row, col], ...], the tiles of its groups, in order) and ``reduction_tile``;
- ``crossbar``: the rest of the crossbar report (``totals``, ``digital_ops``, ``digital_op_counts``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cimc.compiler.crossbar_report import crossbar_report, report_json, text_table
from cimc.ir.attributes import DictAttr
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import array_groups
from cimc.ir.target.chip import Chip
from cimc.ir.target.network import link_loads
from cimc.passes.place import PLACEMENT_ATTRIBUTE, tile_of, traffic_flows


def placement_report(module: ModuleOp, chip: Chip) -> dict[str, Any]:
    """The report of a placed module on ``chip``."""
    groups = array_groups(module)
    tiles = [tile_of(p) for p in groups]
    placement = module.attributes[PLACEMENT_ATTRIBUTE]
    assert isinstance(placement, DictAttr)
    summary: dict[str, Any] = {key: getattr(value, "value", value) for key, value in placement.value}
    best = max(summary["bound"], summary["lower_bound"])
    summary["gap"] = round((summary["objective"] - best) / summary["objective"], 6) if summary["objective"] else 0.0
    flows = [
        (None if f.src is None else tiles[f.src], None if f.dst is None else tiles[f.dst], f.bytes)
        for f in traffic_flows(module)
    ]
    loads = link_loads(chip.mesh, flows)  # as timing loads the sends of the same flows
    per_tile: dict[tuple[int, int], dict[str, Any]] = defaultdict(
        lambda: {"arrays": 0, "groups": 0, "layers": [], "layer_arrays": {}}
    )
    for program, tile in zip(groups, tiles):
        entry = per_tile[tile]
        entry["arrays"] += program.arrays
        entry["groups"] += 1
        if program.location.name not in entry["layers"]:
            entry["layers"].append(program.location.name)
        entry["layer_arrays"][program.location.name] = (
            entry["layer_arrays"].get(program.location.name, 0) + program.arrays
        )
    crossbar = report_json(crossbar_report(module))
    layer_tiles: dict[str | None, list[list[int]]] = defaultdict(list)
    for program, tile in zip(groups, tiles):
        layer_tiles[program.location.name].append(list(tile))
    for layer in crossbar["layers"]:
        layer["tiles"] = layer_tiles.get(layer["name"], [])
        layer["reduction_tile"] = layer["tiles"][0] if layer["tiles"] else None
    busiest = loads.busiest
    return {
        "chip": chip.name,
        "mesh": {"rows": chip.mesh.rows, "cols": chip.mesh.cols, "torus": chip.mesh.torus},
        "faulty_tiles": [list(t) for t in chip.faulty_tiles],
        "arrays": sum(p.arrays for p in groups),
        "tiles_used": len(per_tile),
        "tiles": len(chip.usable_tiles),
        "placement": summary,
        "network": {
            "links": loads.links,
            "byte_hops": loads.total,
            "max_link_bytes": loads.max,
            "mean_link_bytes": round(loads.mean, 3),
            "busiest_link": None if busiest is None else [list(busiest[0]), list(busiest[1])],
            "link_loads": [[list(a), list(b), size] for (a, b), size in loads.loads.items()],
        },
        "schedule": _schedule(crossbar["layers"]),
        "per_tile": [{"tile": list(tile), **per_tile[tile]} for tile in sorted(per_tile)],
        "layers": crossbar.pop("layers"),
        "crossbar": crossbar,
    }


#: The per-layer table of both reports (terminal and HTML): header and alignment (``l``/``r``) of each column.
LAYER_COLUMNS = (
    ("layer", "l"),
    ("kind", "l"),
    ("arrays", "r"),
    ("util", "r"),
    ("repl", "r"),
    ("tiles", "r"),
    ("reduction", "l"),
)


def layer_rows(report: dict[str, Any]) -> list[list[str]]:
    """The cells of the per-layer table, one row per layer, in ``LAYER_COLUMNS`` order."""
    return [
        [
            layer["name"],
            layer["kind"] or "-",
            f"{layer['arrays'] or 0:,}",
            f"{(layer['cell_utilization'] or 0):.1%}",
            str(layer["replication"] or 1),
            str(len({tuple(t) for t in layer["tiles"]})),
            str(tuple(layer["reduction_tile"])) if layer["reduction_tile"] else "-",
        ]
        for layer in report["layers"]
    ]


def _schedule(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The layers as pipeline stages, in execution order, with their array-read rounds per sample."""
    stages, start = [], 0
    for layer in layers:
        rounds = -(-(layer["vectors"] or 1) * layer["planes"] // (layer["replication"] or 1))
        stages.append({"layer": layer["name"], "rounds": rounds, "start": start})
        start += rounds
    slowest = max(stages, key=lambda stage: stage["rounds"], default=None)
    return {
        "stages": stages,
        "latency_rounds": start,
        "interval_rounds": slowest["rounds"] if slowest else 0,
        "bottleneck": slowest["layer"] if slowest else None,
    }


def format_placement_report(report: dict[str, Any]) -> str:
    """The report as terminal text: summary, placement quality, network, layers on tiles, busiest tiles."""
    p, net = report["placement"], report["network"]
    naive = p["naive_objective"]
    saving = f"{1 - p['objective'] / naive:.1%} below naive" if naive else "no traffic"
    lines = [
        f"Chip '{report['chip']}': {report['arrays']:,} arrays on {report['tiles_used']} of {report['tiles']} tiles",
        f"Placement: {p['status']} ({p['solver']}), traffic x hops {p['objective']:,} bytes per sample, "
        f"naive row-major {naive:,} ({saving}), lower bound {p['lower_bound']:,}, CP-SAT bound {p['bound']:,}, "
        f"gap {p['gap']:.1%}",
        f"Network: {net['links']} links, max {net['max_link_bytes']:,} bytes per sample on a link, mean "
        f"{net['mean_link_bytes']:,.1f}" + (f", busiest {net['busiest_link']}" if net["busiest_link"] else ""),
        "",
        text_table(
            "Layers on tiles (reduction: the tile that accumulates the layer's partial sums)",
            [header for header, _ in LAYER_COLUMNS],
            layer_rows(report),
            "".join(align for _, align in LAYER_COLUMNS),
        ),
        "",
        text_table(
            "Busiest tiles (up to 20)",
            ["tile", "arrays", "groups", "layers"],
            [
                [str(tuple(t["tile"])), f"{t['arrays']:,}", str(t["groups"]), ", ".join(t["layers"])[:60]]
                for t in sorted(report["per_tile"], key=lambda t: (-t["arrays"], t["tile"]))[:20]
            ],
            "lrrl",
        ),
    ]
    schedule = report["schedule"]
    if schedule["stages"]:
        lines += [
            "",
            f"Schedule: {len(schedule['stages'])} pipelined layer stages; one input takes "
            f"{schedule['latency_rounds']:,} array-read rounds, then a new input every "
            f"{schedule['interval_rounds']:,} (bottleneck: {schedule['bottleneck']})",
        ]
    counts = report["crossbar"]["digital_op_counts"]
    if counts:
        lines += ["", "Digital units: " + ", ".join(f"{op} x{n}" for op, n in counts.items())]
    return "\n".join(lines)
