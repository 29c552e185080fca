"""What a compiled model does on its chip, how fast and for how much energy: the timing model
(``cimc.runtime.timing``) and the energy model (``cimc.runtime.energy``) run on a loaded ``.cimb``, as data
(``Performance.to_dict``) and as a text block for the terminal (``format_performance``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.interpreter import main_function
from cimc.ir.types import TensorType
from cimc.runtime.binary import CompiledModel
from cimc.runtime.energy import EnergyBreakdown, estimate_energy
from cimc.runtime.isa import PORT
from cimc.runtime.timing import Link, Timing, simulate

#: How many of the busiest tiles ``format_performance`` lists.
BUSIEST = 5


@dataclass(frozen=True)
class Performance:
    """The timing and the energy of one compiled model on its chip. ``dynamic_dims`` names each model input with a
    dynamic dim after the first (the batch), as ``x[?x3x?x?]``: the instruction streams count such a dim as 1, so
    the figures describe an input far smaller than a real one (compile with ``--input-shape``)."""

    timing: Timing
    energy: EnergyBreakdown
    dynamic_dims: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able figures: ``latency_cycles``, ``latency_s``, ``interval_cycles``, ``throughput_per_s``,
        ``clock_hz``, ``bottleneck`` (``kind`` tile or link, ``where`` ``[row, col]`` or ``[[row, col], [row,
        col]]`` with the port as ``"port"``, ``cycles``, ``layer``; null when nothing runs), ``tiles`` (``"row,col"``
        -> ``busy_cycles``, ``utilization``), ``links`` (``"row,col->row,col"`` -> busy cycles), ``layers`` (layer
        -> busy cycles on tiles), and ``energy``: ``per_inference_pj`` (category -> pJ: ``arrays``, ``dacs``,
        ``adcs``, ``buffers``, ``network``, ``digital``, and ``closed_loop`` when the model has a ``cim.solve``, whose
        time is on its tile too: ``cimc.runtime.timing``, ``cimc.runtime.energy``), ``total_pj``, ``macs``,
        ``tops_per_w`` (the whole inference), ``reads_pj`` (arrays, DACs and ADCs), ``utilization`` (of the read
        arrays' rows x columns), ``reads_tops_per_w`` (the reads at that utilization), ``full_macs`` and
        ``full_tops_per_w`` (the same reads with every row and column used), ``programming_pj``, ``programming_s``,
        and ``baselines``: ``sram`` and ``dram``, each ``memory``, ``byte_pj`` (a weight byte's read),
        ``per_inference_pj`` (``multiply``, ``add``, ``weights``), ``total_pj`` and ``ratio`` (baseline / CIM: above
        1 the chip beats it); ``dynamic_dims``: the inputs whose dims after the batch are unknown, as
        ``"x[?x3x?x?]"`` (the figures count those dims as 1)."""
        timing, energy = self.timing, self.energy
        bottleneck = timing.bottleneck
        utilization = timing.utilization
        return {
            "latency_cycles": timing.latency_cycles,
            "latency_s": timing.latency_s,
            "interval_cycles": timing.interval_cycles,
            "throughput_per_s": timing.throughput_per_s,
            "clock_hz": timing.clock_hz,
            "bottleneck": None
            if bottleneck is None
            else {
                "kind": bottleneck.kind,
                "where": _where(bottleneck.where),
                "cycles": bottleneck.cycles,
                "layer": bottleneck.layer,
            },
            "tiles": {
                _name(tile): {"busy_cycles": busy, "utilization": utilization[tile]}
                for tile, busy in sorted(timing.tile_cycles.items())
            },
            "links": {_link_name(link): busy for link, busy in sorted(timing.link_cycles.items())},
            "layers": dict(timing.layer_cycles),
            "energy": {
                "per_inference_pj": dict(energy.per_inference_pj),
                "total_pj": energy.total_pj,
                "macs": energy.macs,
                "tops_per_w": energy.tops_per_w,
                "reads_pj": energy.reads_pj,
                "utilization": energy.utilization,
                "reads_tops_per_w": energy.reads_tops_per_w,
                "full_macs": energy.full_macs,
                "full_tops_per_w": energy.full_tops_per_w,
                "programming_pj": energy.programming_pj,
                "programming_s": energy.programming_s,
                "baselines": {
                    name: {
                        "memory": baseline.memory,
                        "byte_pj": baseline.byte_pj,
                        "per_inference_pj": dict(baseline.pj),
                        "total_pj": baseline.total_pj,
                        "ratio": energy.ratios[name],
                    }
                    for name, baseline in energy.baselines.items()
                },
            },
            "dynamic_dims": list(self.dynamic_dims),
        }


def _where(where: Any) -> Any:
    """A tile as ``[row, col]``, a link as two of them; the port as ``"port"``."""
    if where == PORT:
        return "port"
    if isinstance(where[0], tuple):
        return [_where(end) for end in where]
    return list(where)


def _name(tile: tuple[int, int]) -> str:
    return "port" if tile == PORT else f"{tile[0]},{tile[1]}"


def _link_name(link: Link) -> str:
    return f"{_name(link[0])}->{_name(link[1])}"


def estimate(
    model: CompiledModel,
    *,
    pulses_per_cell: int = 1,
    write_pulse_s: float = 1e-7,
    read_passes: Mapping[int, float] | None = None,
) -> Performance:
    """The timing and energy of a loaded binary on the chip it was compiled for; ``read_passes`` gives, by group
    index, the reads an input vector took on average where a range-managed periphery reads some again (1 elsewhere:
    ``GroupGeometry.passes``)."""
    chip = model.chip
    streams = model.program.streams
    groups = list(model.program.groups)  # as the program's walk took them, solve costs included
    timing = model.program.timing  # the walk the program executes in
    if read_passes:
        groups = [dataclasses.replace(g, passes=read_passes.get(i, 1.0)) for i, g in enumerate(groups)]
        timing = simulate(streams, chip, groups)
    return Performance(
        timing,
        estimate_energy(streams, chip, groups, pulses_per_cell=pulses_per_cell, write_pulse_s=write_pulse_s),
        _dynamic_inputs(model.module),
    )


def _dynamic_inputs(module: ModuleOp) -> tuple[str, ...]:
    """Each input of ``main`` with a dynamic dim after the first, as ``name[?x3x?x?]``."""
    func = main_function(module)
    found = []
    for name, arg in zip(func.input_names, func.arguments):
        shape = arg.type.shape if isinstance(arg.type, TensorType) else ()
        if None in shape[1:]:
            found.append(f"{name}[{'x'.join('?' if d is None else str(d) for d in shape)}]")
    return tuple(found)


def _dynamic_note(dynamic: tuple[str, ...]) -> str:
    """The warning ``format_performance`` opens with when inputs have dynamic dims, with the flags that fix them
    (``<n>`` standing for each size only the user knows)."""
    inputs, flags = [], []
    for entry in dynamic:
        name, _, dims = entry[:-1].rpartition("[")
        sizes = dims.split("x")
        inputs.append(f"input {name} has dynamic dims [{', '.join(sizes)}]")
        fixed = [sizes[0]] + ["<n>" if size == "?" else size for size in sizes[1:]]
        flags.append(f"--input-shape {name}={'x'.join(fixed)}")
    return (
        f"Note: {', '.join(inputs)}: these figures count each unknown dim after the batch as 1; "
        f"compile with {' '.join(flags)} for real sizes"
    )


def _versus(ratio: float) -> str:
    """What a baseline / chip energy ratio says: which one wins, by how much."""
    if not ratio:
        return "no chip energy to compare"
    return f"the chip beats it {ratio:,.1f}x" if ratio >= 1 else f"the chip takes {1 / ratio:,.1f}x its energy"


def format_performance(performance: Performance) -> str:
    """A compact text block: a note when inputs have dynamic dims (the figures then describe a tiny input), latency,
    throughput, bottleneck, energy per inference with its breakdown and TOPS/W, the reads' TOPS/W at the model's
    utilization and at full utilization, both digital baselines and which one the chip beats by how much,
    programming, and the busiest tiles' utilization."""
    timing, energy = performance.timing, performance.energy
    lines = [_dynamic_note(performance.dynamic_dims)] if performance.dynamic_dims else []
    lines += [
        f"Latency:    {timing.latency_cycles:,} cycles = {timing.latency_s * 1e6:,.2f} us "
        f"at {timing.clock_hz / 1e9:g} GHz",
        f"Throughput: {timing.throughput_per_s:,.0f} inferences/s (a new input every {timing.interval_cycles:,} "
        "cycles)",
    ]
    if timing.bottleneck is not None:
        b = timing.bottleneck
        where = f"tile {_name(b.where)}" if b.kind == "tile" else f"link {_link_name(b.where)}"  # type: ignore[arg-type]
        lines.append(f"Bottleneck: {where}, {b.cycles:,} busy cycles per input, mostly {b.layer}")
    total = energy.total_pj
    lines.append(f"Energy:     {total / 1e3:,.3f} nJ per inference, {energy.tops_per_w:,.2f} TOPS/W")
    for category, pj in energy.per_inference_pj.items():
        share = pj / total if total else 0.0
        lines.append(f"  {category:<10}{pj / 1e3:>12,.3f} nJ {share:>7.1%}")
    lines.append(
        f"Reads:      {energy.reads_pj / 1e3:,.3f} nJ (arrays, DACs, ADCs), {energy.reads_tops_per_w:,.2f} TOPS/W at "
        f"{energy.utilization:.1%} utilization of the read arrays; {energy.full_tops_per_w:,.2f} TOPS/W at full"
    )
    lines.append(
        f"Baselines:  the {energy.macs:,} MACs on a digital unit (8-bit multiply, 32-bit add, 45 nm), each weight "
        "read once"
    )
    for name, baseline in energy.baselines.items():
        where = f"weights in {baseline.memory}" if name == "sram" else f"weights from {baseline.memory}"
        lines.append(
            f"  {where + f' ({baseline.byte_pj:g} pJ/B)':<40}{baseline.total_pj / 1e3:>12,.3f} nJ: "
            f"{_versus(energy.ratios[name])}"
        )
    lines.append(f"Programming: {energy.programming_pj / 1e6:,.3f} uJ, {energy.programming_s * 1e3:,.3f} ms, once")
    busiest = sorted(timing.utilization.items(), key=lambda item: (-item[1], item[0]))[:BUSIEST]
    lines.append("Busiest tiles: " + ", ".join(f"{_name(tile)} {share:.0%}" for tile, share in busiest))
    return "\n".join(lines)
