"""The functional simulator: runs a compiled model's program (its per-tile instruction streams, executed by
``cimc.runtime.program.Plan``) with the analog behaviour of its arrays.

Each instruction runs its op of the placed ``cim`` module as the exact executor runs it (``evaluate``), on the
operands its tile holds, except the crossbar reads: each chain
``cim.bit_planes -> cim.mvm -> cim.adc -> cim.shift_add`` (one row block of one layer) is simulated as the chip
does it, in one step:

- arrays are programmed once, when the simulator is made (``cimc.runtime.analog.program_group``: stuck cells,
  programming error, drift to the evaluation time with its compensation, IR drop), giving each array's
  conductances in level units;
- ``cimc.runtime.kernels.read_arrays`` applies each bit plane of every input vector to the rows, sums every
  column's current from the conductance rows it drives (subset-sum tables, a tile of columns at a time, no current
  written to memory), adds read noise, digitizes with the ADC (offset, step, saturation) and shift-adds; it counts
  the conversions that saturate, which ``adc_counts`` gathers per layer (the price of an ADC whose range was
  calibrated below the worst case).

At the statistical fidelity level (``AnalogConfig.fidelity``) a row block, or a whole layer of them, is instead one
product of its input codes with the programmed conductances folded over slices and signs, each output's sum of
per-read errors drawn at once (``cimc.runtime.statistical``); blocks where that model does not hold are read as
above, and ``fallbacks`` names them.

With every effect off (``AnalogConfig.ideal``) a row block whose ADC reads every column sum exactly is one exact
integer product of the input codes with the block's signed weights (the planes, slices and signs folded back),
and a layer of such blocks one product of its whole matrix, done with the quantize, im2col and dequantize around
it in single passes (``cimc.runtime.exact``): the fast path of ``--ideal``, equal bit for bit to the exact executor
(tests check both paths against it).

Batches stream through ``run_stream``: memory follows one batch, and every read's noise depends only on the seed,
the array group and the input vector's position in the stream, so results do not depend on the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numba as nb
import numpy as np

from cimc.ir.core import Operation, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import (
    CHIP_ATTRIBUTE,
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    DigitalOp,
    Im2ColOp,
    MvmOp,
    ProgramOp,
    QuantizeOp,
    ShiftAddOp,
    array_groups,
    layer_scales,
    signed_phases,
)
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.dialects.graph import ClipOp, ConstantOp, ReluOp, TransposeOp
from cimc.ir.interpreter import InterpreterError, bind_inputs, main_function
from cimc.ir.target.chip import RangeManagement
from cimc.ir.types import ElementType
from cimc.runtime import kernels, statistical
from cimc.runtime.analog import AnalogConfig, group_top_level, program_group, relative_conductance
from cimc.runtime.binary import CompiledModel
from cimc.runtime.exact import Dequantize, ExactLayer, Patches, Quantize
from cimc.runtime.periphery import managed_read, readout
from cimc.runtime.programming import NOISE_STREAM


@dataclass(frozen=True)
class _Chain:
    """One row block's read chain, simulated as one step at its ``cim.shift_add``."""

    planes: BitPlanesOp
    mvm: MvmOp
    adc: AdcOp
    shift_add: ShiftAddOp
    program: ProgramOp
    group: int


@dataclass
class _Arrays:
    """A programmed array group as the reads see it: per replica, the conductances as a GEMM operand
    ``[rows, signs * slices * cols]`` (level units) and the column ADCs' offsets; on the exact fast path, the
    block's signed integer weights ``[rows, cols]``; under a range-managed periphery, the fields below instead."""

    conductance: list[np.ndarray]
    offsets: list[np.ndarray]
    exact_weights: np.ndarray | None  # int64 [rows, cols]
    stuck_on: int
    stuck_off: int
    min_ir_factor: float = 1.0
    top_level: int | None = None  # the level programmed at g_max
    # a range-managed periphery's reads: per replica the signed weights [rows, cols] (level units) and the drift
    # compensation gain applied to the outputs; the output unit per column
    signed: list[np.ndarray] = field(default_factory=list)
    alpha: list[float] = field(default_factory=list)
    unit: np.ndarray | None = None


@dataclass
class _Fused:
    """The digital ops an exact layer does itself (``Simulator._fusable``), and their ``id``s."""

    quantize: Quantize | None = None
    patches: Patches | None = None
    dequantize: Dequantize | None = None
    ops: list[int] = field(default_factory=list)
    #: the float value the fused quantize (or its clip) reads, and the fused dequantize's result
    source: Value | None = None
    output: Value | None = None


@dataclass
class AdcCounts:
    """A layer's ADC conversions so far and how many of them saturated (read a current above the ADC's range)."""

    conversions: int = 0
    saturated: int = 0

    @property
    def fraction(self) -> float:
        """Saturated conversions over all conversions (0 before any)."""
        return self.saturated / self.conversions if self.conversions else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"conversions": self.conversions, "saturated": self.saturated, "fraction": self.fraction}


@dataclass(frozen=True)
class ProgrammingStats:
    """What programming the arrays gave: groups, cells, stuck cells, and the smallest first-order IR-drop factor
    of any cell (below about 0.9 the first-order model overstates the drop: ``ir_drop_warning`` says so);
    ``noise_stream``: the version of the random stream the arrays were drawn from
    (``cimc.runtime.programming.NOISE_STREAM``), which a result must name to be reproduced."""

    groups: int
    cells: int
    stuck_on: int
    stuck_off: int
    min_ir_factor: float
    noise_stream: int = NOISE_STREAM

    @property
    def ir_drop_warning(self) -> str | None:
        if self.min_ir_factor >= 0.9:
            return None
        return (
            f"IR drop takes up to {1 - self.min_ir_factor:.0%} of a cell's voltage: beyond the first-order model's "
            "range (a few percent), so the simulated drop is overstated; smaller arrays or lower conductances help"
        )


def _chains(module: ModuleOp) -> dict[int, _Chain]:
    """The read chains of ``main``, keyed by ``id`` of their shift-add; a chain whose intermediate values have
    other users is left to the exact executor."""
    func = main_function(module)
    groups = {id(op): g for g, op in enumerate(array_groups(module))}
    chains: dict[int, _Chain] = {}
    for op in func.body.ops:
        if not isinstance(op, ShiftAddOp):
            continue
        adc = _producer(op.operands[0])
        mvm = adc and _producer(adc.operands[0])
        planes = mvm and _producer(mvm.operands[0])
        program = mvm and _producer(mvm.operands[1])
        if (
            isinstance(adc, AdcOp)
            and isinstance(mvm, MvmOp)
            and isinstance(planes, BitPlanesOp)
            and isinstance(program, ProgramOp)
            and len(adc.result.uses) == 1
            and len(mvm.result.uses) == 1
        ):
            chains[id(op)] = _Chain(planes, mvm, adc, op, program, groups[id(program)])
    return chains


def _producer(value: Value) -> Operation | None:
    return getattr(value, "op", None)


def _clip_bounds(op: Operation | None) -> tuple[float, float] | None:
    """``(low, high)`` of a ``cim.digital`` that runs one float32 ``graph.relu`` (0 and infinity) or
    ``graph.clip`` with constant bounds (infinite where absent) on its first operand: the clip a quantize can
    apply on the way. None for any other op."""
    if not isinstance(op, DigitalOp) or len(op.body) != 2 or len(op.results) != 1:
        return None
    work, block = op.work, op.regions[0].block
    if work.operands[0] is not block.args[0] or op.result.type.element != ElementType("f32"):  # type: ignore[attr-defined]
        return None
    if isinstance(work, ReluOp):
        return 0.0, np.inf
    if not isinstance(work, ClipOp):
        return None
    bounds = [-np.inf, np.inf]
    for i, group in enumerate(work.operand_groups()[1:]):
        for value in group:
            index = next((j for j, arg in enumerate(block.args) if arg is value), None)
            constant = None if index is None else _producer(op.operands[index])
            if not isinstance(constant, ConstantOp) or constant.value.size != 1:
                return None
            bound = float(np.float32(constant.value.reshape(())))
            if np.isnan(bound):
                return None
            bounds[i] = bound
    return bounds[0], bounds[1]


class Simulator:
    """A compiled model's program on simulated arrays under ``config`` (the device and the effects): the binary's
    instruction streams, in the order of their walk (``model.program``), each running its op of ``main``.

    ``run(inputs)`` runs one batch; ``run_stream(batches)`` runs a sequence of batches with bounded memory.
    Programming happens here, once: a new seed or drift time means a new ``Simulator``. ``exact_fast_path=False``
    keeps ideal reads on the simulated path (planes, GEMM, ADC kernel), which tests compare with the fast one.
    ``adc_counts`` holds each crossbar layer's ADC conversions and saturations over every run so far, by layer name.
    ``periphery``: the chip's range-managed converters (``cimc.runtime.periphery``), which then read every row block
    in place of its bit planes and ADC; None reads as the compiled program says (``--ideal`` passes None).
    ``fallbacks``: under ``config.fidelity == "statistical"``, per array group read per read, why.
    """

    def __init__(
        self,
        model: CompiledModel,
        config: AnalogConfig,
        *,
        exact_fast_path: bool = True,
        periphery: RangeManagement | None = None,
    ) -> None:
        module = model.module
        self.module = module
        self.program = model.program
        self.config = config
        self.exact_fast_path = exact_fast_path
        self.periphery = periphery
        #: per array group, the reads (passes) and the input vectors its range-managed reads took so far
        self.read_passes: dict[int, list[int]] = {}
        self.func = main_function(module)
        self._chains = _chains(module)
        # the planes, reads and ADC readings of a chain are not materialized: those ops pass their input codes on
        fused_uses = {id(c.mvm) for c in self._chains.values()}
        self._pass_through = {id(c.mvm) for c in self._chains.values()} | {id(c.adc) for c in self._chains.values()}
        for chain in self._chains.values():
            if all(id(use.op) in fused_uses for use in chain.planes.result.uses):
                self._pass_through.add(id(chain.planes))
        self.chip = model.chip
        self._adc_columns = self.chip.tile.adc_columns if self.chip is not None else 1
        self._arrays = self._program_all()
        self._products: dict[int, ExactLayer] = {}
        self._layer_chains: dict[int, list[_Chain]] = {}
        self._layers = self._exact_layers()
        self.adc_counts: dict[str, AdcCounts] = {}
        for chain in self._chains.values():
            self.adc_counts.setdefault(_layer_name(chain), AdcCounts())
        #: per array group read statistically, its prepared replicas (``cimc.runtime.statistical``); per group
        #: where the statistical model does not hold and the per-read level reads instead, the reason
        self._statistical: dict[int, list[statistical.Block]] = {}
        self._statistical_layers: dict[int, statistical.Layer] = {}
        self.fallbacks: dict[int, str] = {}
        self._signed32: dict[int, list[np.ndarray]] = {}  # a range-managed periphery's weights in float32
        if config.fidelity == "statistical" and periphery is None:
            self._prepare_statistical()
        self.stats = ProgrammingStats(
            groups=len(self._arrays),
            cells=sum(c.program.tensor_attr("levels").size * c.program.attr("replication") for c in self._unique()),
            stuck_on=sum(a.stuck_on for a in self._arrays.values()),
            stuck_off=sum(a.stuck_off for a in self._arrays.values()),
            min_ir_factor=min((a.min_ir_factor for a in self._arrays.values()), default=1.0),
        )

    @property
    def input_names(self) -> list[str]:
        return self.func.input_names

    @property
    def output_names(self) -> list[str]:
        return self.func.output_names

    def _unique(self) -> list[_Chain]:
        seen: dict[int, _Chain] = {}
        for chain in self._chains.values():
            seen.setdefault(chain.group, chain)
        return list(seen.values())

    # --- programming --------------------------------------------------------------------------------------------

    def _program_all(self) -> dict[int, _Arrays]:
        """Program every array group (``_program``), as many at a time as numba has threads: a group's kernel
        releases the GIL, and its draws depend on its key alone, so the arrays do not depend on the threads."""
        chains = self._unique()
        workers = min(nb.get_num_threads(), len(chains))
        if workers <= 1:
            return {chain.group: self._program(chain) for chain in chains}
        with ThreadPoolExecutor(workers) as pool:
            return dict(zip((chain.group for chain in chains), pool.map(self._program, chains), strict=True))

    def _program(self, chain: _Chain) -> _Arrays:
        """Program one array group: each replica is programmed apart (its own draws); columns sharing an ADC
        share its offset (the chip's ``adc_columns``, from the module's ``cim.chip``)."""
        program = chain.program
        levels = program.tensor_attr("levels")
        rows, cell_bits = program.rows, program.attr("cell_bits")
        if self.exact_fast_path and self.config.is_ideal and self.periphery is None and self._adc_exact(chain):
            return _Arrays([], [], _signed_weights(chain), 0, 0)
        top = group_top_level(levels, cell_bits)
        managed = self.periphery is not None
        # a range-managed periphery compensates drift on its digitized outputs, from its own read-outs (below)
        config = replace(self.config, drift_compensation=False) if managed else self.config
        result = _Arrays([], [], None, 0, 0, top_level=top)
        if managed:
            result.unit = self._output_unit(chain, top)
        for replica in range(program.attr("replication")):
            seed = [self.config.seed, chain.group, replica]
            compensate = managed and self.config.drift_compensation and self.config.device.drift != "none"
            arrays = program_group(
                levels,
                cell_bits,
                config,
                kernels.stream_key(*seed),
                array_cols=program.attr("array_cols"),
                adc_columns=self._adc_columns,
                top_level=top,
                keep_programmed=compensate,
            )
            g = arrays.conductance
            result.stuck_on += arrays.stuck_on
            result.stuck_off += arrays.stuck_off
            result.min_ir_factor = min(result.min_ir_factor, arrays.min_ir_factor)
            if not managed:
                result.conductance.append(g.transpose(2, 0, 1, 3).reshape(rows, -1))  # a view: no copy
                result.offsets.append(arrays.adc_offsets.reshape(-1).astype(np.float32))
                continue
            result.signed.append(_signed_levels(g, cell_bits))
            alpha = 1.0
            if arrays.programmed is not None:  # read-outs of the arrays as programmed (t0) and as they are now
                alpha = self._readout(arrays.programmed, cell_bits, result.unit, [*seed, 1])
                alpha /= self._readout(g, cell_bits, result.unit, [*seed, 2])
            result.alpha.append(alpha)
        return result

    def _output_noise(self) -> float:
        """The device's output noise in the periphery's output unit: its sigma over ``g_max``, a fraction of one
        full-scale cell at the full input (or, in weight units, of one unit weight, as aihwkit's ``out_noise``)."""
        return self.config.device.output_noise_us / self.config.device.g_max_us if self.config.output_noise else 0.0

    def _readout(self, conductance: np.ndarray, cell_bits: int, unit: np.ndarray | None, key: list[int]) -> float:
        """The drift-compensation read-out of one replica's arrays through the range-managed converters."""
        assert self.periphery is not None and unit is not None
        return readout(
            _signed_levels(conductance, cell_bits),
            unit,
            self.periphery,
            sigma=self._output_noise(),
            key=kernels.stream_key(*key),
        )

    def _output_unit(self, chain: _Chain, top: int) -> np.ndarray:
        """What one level of each column is in the periphery's output unit: the layer's weight per level
        (``cim.dequantize``'s scale over the input codes' scale) in weight units, else one full-scale cell (1 / the
        level at ``g_max``)."""
        columns = chain.program.columns
        assert self.periphery is not None
        if not self.periphery.weight_units:
            return np.full(columns, 1.0 / top)
        found = layer_scales(chain.shift_add.result, chain.planes.operands[0])
        if found is None:
            raise InterpreterError(
                f"'{chain.adc.name}' at {chain.adc.location}: a periphery in weight units needs the layer's "
                "cim.quantize and cim.dequantize scales, which this read chain does not reach"
            )
        scale, offset = found
        return np.asarray(scale[offset : offset + columns], dtype=np.float64)

    def _exact_layers(self) -> dict[int, ExactLayer]:
        """The layers whose row blocks all read exactly from one codes value, at their ``cim.accumulate`` (or the
        ``cim.shift_add`` of a one-block layer): each becomes one ``ExactLayer``, the product of those codes with
        the layer's whole signed weight matrix (the blocks' shift-adds pass the codes on), fused with the
        ``cim.quantize`` (and a ``Clip`` or ``Relu`` before it), ``cim.im2col`` and ``cim.dequantize`` chained to it
        alone (those then pass their operand on: the layer takes the floats and returns the dequantized outputs).
        Keyed by ``id`` of that op."""
        layers: dict[int, ExactLayer] = {}
        fusions: dict[int, _Fused] = {}
        for op in self.func.body.ops:
            if isinstance(op, AccumulateOp):
                chains = [self._chains.get(id(_producer(v))) for v in op.operands]
                columns, col_offsets = op.attr("columns"), op.attr("col_offsets")
            elif id(op) in self._chains and not any(isinstance(u.op, AccumulateOp) for u in op.result.uses):
                lone = self._chains[id(op)]
                chains = [lone]  # a layer of one row block
                columns, col_offsets = lone.program.columns, [0]
            else:
                continue
            if (
                not all(
                    c is not None
                    and self._arrays[c.group].exact_weights is not None
                    and (len(c.shift_add.result.uses) == 1 or c.shift_add is op)
                    for c in chains
                )
                or len({id(c.planes.operands[0]) for c in chains if c is not None}) != 1
            ):
                continue
            blocks = [c for c in chains if c is not None]
            # the codes' width where known, not the last block's end: a trailing row block of zeros has no arrays
            # (``tile``), and a convolution's patches still hold its rows
            width = blocks[0].planes.operands[0].type.shape[-1]  # type: ignore[attr-defined]
            depth = width if width is not None else max(c.mvm.attr("row_offset") + c.program.rows for c in blocks)
            weights = np.zeros((depth, columns), np.int64)
            for chain, offset in zip(blocks, col_offsets):
                block = self._arrays[chain.group].exact_weights
                assert block is not None
                start = chain.mvm.attr("row_offset")
                weights[start : start + block.shape[0], offset : offset + block.shape[1]] += block
            planes = blocks[0].planes
            fused = fusions[id(op)] = self._fusable(op, blocks)
            layers[id(op)] = ExactLayer(
                weights,
                planes.attr("input_bits"),
                planes.attr("zero_point"),
                quantize=fused.quantize,
                patches=fused.patches,
                dequantize=fused.dequantize,
            )
            self._layer_chains[id(op)] = blocks
            self._pass_through.update(id(c.shift_add) for c in blocks if c.shift_add is not op)
            self._pass_through.update(fused.ops)
        self._requantize(layers, fusions)
        return layers

    def _fusable(self, op: Operation, blocks: list[_Chain]) -> _Fused:
        """The quantize (with the clip only it reads) and im2col whose codes only this layer's planes read, and the
        dequantize that alone reads its accumulators: the ops an ``ExactLayer`` can do in its own passes."""
        fused = _Fused()
        (use,) = op.result.uses if len(op.result.uses) == 1 else (None,)
        if use is not None and isinstance(use.op, DequantizeOp):
            deq = use.op
            sums = deq.tensor_attr("weight_sums").astype(np.int64)
            bias = deq.tensor_attr("bias").astype(np.float64) if "bias" in deq.attributes else None
            scale = deq.tensor_attr("scale").astype(np.float64)
            fused.dequantize = Dequantize(deq.attr("zero_point") * sums, scale, bias)
            fused.ops.append(id(deq))
            fused.output = deq.result
        codes = blocks[0].planes.operands[0]
        planes = {id(c.planes) for c in blocks}
        if not all(p in self._pass_through and id(u.op) in planes for p in planes for u in codes.uses):
            return fused
        producer = _producer(codes)
        if isinstance(producer, Im2ColOp) and len(producer.attr("kernel_shape")) == 2:
            fused.patches = Patches(
                tuple(producer.attr("kernel_shape")),
                tuple(producer.attr("strides")),
                tuple(producer.attr("dilations")),
                tuple(producer.attr("pads")),
                producer.attr("fill"),
            )
            fused.ops.append(id(producer))
            if len(producer.operands[0].uses) != 1:
                return fused
            producer = _producer(producer.operands[0])
        if isinstance(producer, QuantizeOp):
            dtype = producer.result.type.dtype  # type: ignore[attr-defined]
            bits = producer.attr("bits")
            clip = _producer(producer.operands[0])
            bounds = _clip_bounds(clip) if len(producer.operands[0].uses) == 1 else None
            low, high = bounds or (-np.inf, np.inf)
            fused.quantize = Quantize(producer.attr("scale"), producer.attr("zero_point"), bits, dtype, low, high)
            fused.ops.append(id(producer))
            fused.source = producer.operands[0]
            if bounds is not None:
                assert clip is not None
                fused.ops.append(id(clip))
                fused.source = clip.operands[0]
        return fused

    @staticmethod
    def _requantize(layers: dict[int, ExactLayer], fusions: dict[int, _Fused]) -> None:
        """Cross-layer fusion: where a layer's fused quantize (and clip) reads nothing but another layer's fused
        dequantize, through transposes only, that other layer makes the codes itself (``ExactLayer.requantize``)
        and this one takes them: the floats between the two are never written. The transposes still run, on the
        codes (a transpose moves values of any type)."""
        outputs = {id(f.output): key for key, f in fusions.items() if f.output is not None}
        for key, fused in fusions.items():
            value = fused.source
            while value is not None and len(value.uses) == 1 and id(value) not in outputs:
                producer = _producer(value)
                if (
                    isinstance(producer, DigitalOp)
                    and len(producer.body) == 2
                    and isinstance(producer.work, TransposeOp)
                ):
                    value = producer.operands[0]
                else:
                    value = None
            if value is None or len(value.uses) != 1 or id(value) not in outputs:
                continue
            layers[outputs[id(value)]].requantize = layers[key].quantize
            layers[key].quantize = None

    @staticmethod
    def _adc_exact(chain: _Chain) -> bool:
        """Whether the ADC returns every column sum unchanged: no dropped bits and a code for the largest sum."""
        levels = chain.program.tensor_attr("levels").astype(np.int64)
        top_plane = (1 << chain.planes.attr("dac_bits")) - 1
        largest = int(levels.sum(axis=2).max(initial=0)) * top_plane
        return chain.adc.dropped_bits == 0 and largest < 1 << chain.adc.attr("bits")

    def _prepare_statistical(self) -> None:
        """Prepare every simulated array group for statistical reads, or note in ``fallbacks`` why it is read per
        read."""
        for chain in self._unique():
            arrays = self._arrays[chain.group]
            if arrays.exact_weights is not None:
                continue  # exact reads: nothing to draw
            program = chain.program
            signs, slices, rows, columns = program.signs, program.slices, program.rows, program.columns
            cell_bits, dac_bits = program.attr("cell_bits"), chain.planes.attr("dac_bits")
            sigma_cell, sigma_column = self.config.read_sigmas(cell_bits, dac_bits, arrays.top_level)
            scaled = sigma_cell > 0 and self.config.device.read_noise_scaling == "conductance"
            blocks: list[statistical.Block] = []
            for replica, g in enumerate(arrays.conductance):
                levels = g.reshape(rows, signs, slices, columns).transpose(1, 2, 0, 3)
                ratio = (
                    relative_conductance(levels, cell_bits, self.config.device, arrays.top_level) if scaled else None
                )
                block = statistical.prepare(
                    levels,
                    arrays.offsets[replica].reshape(signs, slices, columns),
                    cell_bits=cell_bits,
                    dac_bits=dac_bits,
                    step=float(1 << chain.adc.dropped_bits),
                    top=float((1 << chain.adc.attr("bits")) - 1),
                    sigma_cell=sigma_cell,
                    sigma_column=sigma_column,
                    noise_ratio=ratio,
                    input_top=max(chain.planes.attr("zero_point"), (1 << chain.planes.attr("input_bits")) - 1),
                    key=kernels.stream_key(self.config.seed, chain.group, replica, statistical.STREAM),
                )
                if isinstance(block, str):
                    self.fallbacks[chain.group] = f"'{_layer_name(chain)}' group {chain.group}: {block}"
                    break
                blocks.append(block)
            else:
                self._statistical[chain.group] = blocks
        self._statistical_layers = self._merge_statistical()

    def _merge_statistical(self) -> dict[int, statistical.Layer]:
        """The ``cim.accumulate`` ops whose row blocks are all read statistically from one codes value, one
        replica each: each becomes one ``statistical.Layer`` (its shift-adds pass the codes on). Keyed by ``id`` of
        the accumulate."""
        layers: dict[int, statistical.Layer] = {}
        for position, op in enumerate(self.func.body.ops):
            if not isinstance(op, AccumulateOp) or id(op) in self._layers:
                continue
            chains = [self._chains.get(id(_producer(v))) for v in op.operands]
            blocks = [c for c in chains if c is not None and len(self._statistical.get(c.group, ())) == 1]
            if (
                len(blocks) != len(chains)
                or any(len(c.shift_add.result.uses) != 1 for c in blocks)
                or len({id(c.planes.operands[0]) for c in blocks}) != 1
                or blocks[0].planes.attr("input_bits") > 8  # a Layer counts planes by byte (``statistical.Layer``)
                or any(c.program.rows > 255 for c in blocks)
            ):
                continue
            placed = []
            for chain, column in zip(blocks, op.attr("col_offsets")):
                (block,) = self._statistical[chain.group]
                offset = chain.shift_add.attr("weight_offset")
                if offset:  # offset encoding: the stored offset times the codes' sum comes out of every column
                    block = replace(block, weights=block.weights - block.weights.dtype.type(offset))
                placed.append(statistical.Placed(block, chain.mvm.attr("row_offset"), column))
            planes = blocks[0].planes
            zero_point = planes.attr("zero_point")
            counts = signed_phases(planes.attr("input_bits"), 1, zero_point) if zero_point else (_planes(blocks[0]),)
            layers[id(op)] = statistical.Layer(
                placed,
                max(c.mvm.attr("row_offset") + c.program.rows for c in blocks),
                op.attr("columns"),
                zero_point=zero_point,
                phase_planes=np.asarray(counts, dtype=np.int64),
                plane_weights=blocks[0].shift_add.plane_weights(_planes(blocks[0])),
                key=kernels.stream_key(self.config.seed, statistical.STREAM, position),
            )
            self._layer_chains[id(op)] = blocks
            self._pass_through.update(id(c.shift_add) for c in blocks)
        return layers

    def _statistical_read(
        self, chain: _Chain, blocks: list[statistical.Block], x: np.ndarray, first_vector: int, vectors: int
    ) -> np.ndarray:
        """Partial sums of a row block read at the statistical level (``cimc.runtime.statistical.read``), the
        replicas serving the vectors as ``_analog_read``'s do."""
        zero_point = chain.planes.attr("zero_point")
        counts = signed_phases(chain.planes.attr("input_bits"), 1, zero_point) if zero_point else (_planes(chain),)
        phase_planes = np.asarray(counts, dtype=np.int64)
        plane_weights = chain.shift_add.plane_weights(_planes(chain))
        index = np.arange(len(x), dtype=np.int64)
        out = np.empty((len(x), chain.program.columns), dtype=np.int64)
        replica_of = (index % vectors) % len(blocks)
        for replica, block in enumerate(blocks):
            sel = index if len(blocks) == 1 else index[replica_of == replica]
            xs = x if len(blocks) == 1 else x[sel]
            out[sel] = statistical.read(block, xs, zero_point, phase_planes, plane_weights, sel + first_vector)
        self._count(chain, len(x), 0)
        return out

    # --- running ------------------------------------------------------------------------------------------------

    def run(
        self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], first_sample: int = 0
    ) -> dict[str, np.ndarray]:
        """Outputs for one batch, keyed by output name; ``first_sample`` is the batch's position in a stream (it
        picks the reads' noise)."""
        args = bind_inputs(self.func, inputs)
        outputs = self.program.run(args, lambda op, values: self._evaluate(op, values, first_sample))
        return dict(zip(self.output_names, outputs))

    def run_stream(
        self, batches: Iterable[Mapping[str, np.ndarray]], progress: Callable[[int], None] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Outputs batch by batch; ``progress(samples_done)`` after each."""
        done = 0
        for batch in batches:
            outputs = self.run(batch, first_sample=done)
            done += len(next(iter(batch.values())))
            if progress is not None:
                progress(done)
            yield outputs

    def _evaluate(self, op: Operation, args: list[np.ndarray], first_sample: int) -> list[np.ndarray]:
        if id(op) in self._pass_through:
            return [args[0]]  # the input codes travel on to the chain's shift-add
        chain = self._chains.get(id(op))
        try:
            with np.errstate(all="ignore"):
                layer = self._layers.get(id(op))
                if layer is not None:
                    vectors = layer.vectors(args[0])
                    for block in self._layer_chains[id(op)]:
                        self._count(block, vectors, 0)
                    return [layer(args[0])]
                stat = self._statistical_layers.get(id(op))
                if stat is not None:
                    lead = args[0].shape[:-1]
                    codes = args[0].reshape(-1, args[0].shape[-1])[:, : stat.weights.shape[0]]
                    for block in self._layer_chains[id(op)]:
                        self._count(block, len(codes), 0)
                    first = first_sample * max(math.prod(lead[1:]), 1)
                    acc = stat(codes, np.arange(len(codes), dtype=np.int64) + first)
                    return [acc.astype(np.int32).reshape(*lead, acc.shape[-1])]
                if chain is not None:
                    return [self._read(chain, args, first_sample)]
                if isinstance(op, SolveOp):
                    return [self._solve(op, args[0])]
                evaluate = getattr(op, "evaluate", None)
                if evaluate is None:
                    raise InterpreterError(f"'{op.name}' at {op.location} has no implementation")
                return [np.asarray(r) for r in evaluate(args)]
        except InterpreterError:
            raise
        except Exception as exc:
            raise InterpreterError(f"'{op.name}' at {op.location} failed: {exc}") from exc

    def _solve(self, op: SolveOp, rhs: np.ndarray) -> np.ndarray:
        """A ``cim.solve`` by the closed-loop circuit model (``cimc.runtime.closed_loop``) under this run's device,
        seed and drift, one sample of a batched right-hand side ``[..., n, k]`` at a time; the seed is the run's for
        every sample, as one programmed matrix serves them all."""
        from cimc.runtime.closed_loop import SolveConfig, solve

        if self.chip is None:
            raise InterpreterError(f"'{op.name}' at {op.location} needs the module's '{CHIP_ATTRIBUTE}': compile it")
        config = SolveConfig(
            ideal=self.config.is_ideal,
            device=self.config.device,
            matrix_bits=op.matrix_bits,
            tol=op.attr("tol"),
            max_iterations=op.attr("max_iterations"),
            seed=self.config.seed,
            drift_time_s=self.config.drift_time_s,
        )
        matrix = op.tensor_attr("matrix")
        samples = rhs.reshape(-1, *rhs.shape[-2:]) if rhs.ndim > 2 else rhs[None]
        x = [solve(matrix, b, self.chip, config=config)[0] for b in samples]
        return np.stack(x).reshape(rhs.shape).astype(rhs.dtype)

    def _read(self, chain: _Chain, args: list[np.ndarray], first_sample: int) -> np.ndarray:
        """A row block's partial sums ``[..., cols]`` (i32) from its input codes ``args[0]``."""
        codes = args[0]
        arrays = self._arrays[chain.group]
        program, shift_add = chain.program, chain.shift_add
        rows, columns = program.rows, program.columns
        start = chain.mvm.attr("row_offset")
        lead = codes.shape[:-1]
        x = codes[..., start : start + rows].reshape(-1, rows)
        vectors = max(math.prod(lead[1:]), 1)
        if arrays.signed:
            return self._managed_read(chain, arrays, x, first_sample * vectors).reshape(*lead, columns)
        if arrays.exact_weights is not None:  # the offset is in the weights
            product = self._products.get(chain.group)
            if product is None:
                product = self._products[chain.group] = ExactLayer(
                    arrays.exact_weights, chain.planes.attr("input_bits"), chain.planes.attr("zero_point")
                )
            self._count(chain, len(x), 0)
            return product(x).reshape(*lead, columns)
        blocks = self._statistical.get(chain.group)
        if blocks is not None:
            partial = self._statistical_read(chain, blocks, x, first_sample * vectors, vectors)
        else:
            partial = self._analog_read(chain, arrays, x, first_sample * vectors, vectors)
        if len(args) > 1:  # offset encoding: the stored offset times the codes' sum comes out again
            s0, n = shift_add.attr("row_offset"), shift_add.attr("rows")
            codes_in = args[1][..., s0 : s0 + n].astype(np.int64) - shift_add.attr("input_zero_point")
            partial -= shift_add.attr("weight_offset") * codes_in.sum(axis=-1).reshape(-1, 1)
        return partial.astype(np.int32).reshape(*lead, columns)

    def _managed_read(self, chain: _Chain, arrays: _Arrays, x: np.ndarray, first_vector: int) -> np.ndarray:
        """Partial sums (i32) of a row block read through the range-managed periphery (``managed_read``), the
        replicas serving the input vectors in turn, each replica's drift-compensation gain on its digitized outputs
        (as aihwkit applies its ``alpha``); tallies the passes in ``read_passes``."""
        assert self.periphery is not None and arrays.unit is not None
        statistical_level = self.config.fidelity == "statistical"
        # integer codes: exact in float32, which the statistical level's kernels read (``managed_read``)
        codes = x.astype(np.float32 if statistical_level else np.float64) - chain.planes.attr("zero_point")
        index = np.arange(len(x), dtype=np.int64) + first_vector
        replicas = len(arrays.signed)
        out = np.zeros((len(x), chain.program.columns))
        passes = np.zeros(len(x), dtype=np.int64)
        clipped = 0
        weights = arrays.signed
        if statistical_level:  # float32 products (``managed_read``)
            weights = self._signed32.get(chain.group) or [w.astype(np.float32) for w in arrays.signed]
            self._signed32[chain.group] = weights
        for replica in range(replicas):
            sel = index % replicas == replica
            part, taken, kept = managed_read(
                codes[sel],
                weights[replica],
                arrays.unit,
                self.periphery,
                full_scale=float((1 << chain.planes.attr("input_bits")) - 1),
                sigma=self._output_noise(),
                key=kernels.stream_key(self.config.seed, chain.group, replica),
                vector_index=index[sel],
            )
            out[sel] = part * arrays.alpha[replica]
            passes[sel] = taken
            clipped += kept
        tally = self.read_passes.setdefault(chain.group, [0, 0])
        tally[0] += int(passes.sum())
        tally[1] += len(x)
        counts = self.adc_counts[_layer_name(chain)]  # one conversion per output and pass
        counts.conversions += int(passes.sum()) * chain.program.columns
        counts.saturated += clipped
        return np.rint(out).astype(np.int32)

    def _count(self, chain: _Chain, vectors: int, saturated: int) -> None:
        """Add the conversions of ``vectors`` input vectors read by ``chain`` and the ``saturated`` ones among them
        to its layer's ``adc_counts``."""
        counts = self.adc_counts[_layer_name(chain)]
        per_vector = math.prod(chain.adc.result.type.shape[-3:]) * _planes(chain)  # type: ignore[attr-defined]
        counts.conversions += vectors * per_vector
        counts.saturated += saturated

    def _analog_read(
        self, chain: _Chain, arrays: _Arrays, x: np.ndarray, first_vector: int, vectors: int
    ) -> np.ndarray:
        """Partial sums of a row block read by simulated arrays: ``kernels.read_arrays`` per replica (every plane,
        slice and sign read, noise drawn and digitized per read, no current written to memory)."""
        program = chain.program
        signs, slices, rows, columns = program.signs, program.slices, program.rows, program.columns
        dac_bits = chain.planes.attr("dac_bits")
        planes = _planes(chain)
        cell_bits = program.attr("cell_bits")
        sign = np.array([1, -1][:signs], dtype=np.int64).reshape(1, signs, 1)
        slice_shift = np.int64(1) << (np.arange(slices, dtype=np.int64) * cell_bits).reshape(1, 1, -1)
        plane_weight = chain.shift_add.plane_weights(planes).reshape(-1, 1, 1)
        weights = np.ascontiguousarray((plane_weight * sign * slice_shift).reshape(planes, signs * slices))
        zero_point = chain.planes.attr("zero_point")
        counts = signed_phases(chain.planes.attr("input_bits"), dac_bits, zero_point) if zero_point else (planes,)
        phase_planes = np.asarray(counts, dtype=np.int64)
        sigma_cell, sigma_column = self.config.read_sigmas(cell_bits, dac_bits, arrays.top_level)
        scaled = sigma_cell > 0 and self.config.device.read_noise_scaling == "conductance"
        step = float(1 << chain.adc.dropped_bits)
        top = float((1 << chain.adc.attr("bits")) - 1)
        key = kernels.stream_key(self.config.seed, chain.group)
        out = np.zeros((len(x), columns), dtype=np.int64)
        saturated = np.zeros(len(x), dtype=np.int64)
        replicas = len(arrays.conductance)
        index = np.arange(len(x), dtype=np.int64)
        replica_of = (index % vectors) % replicas
        bound = rows * float((1 << dac_bits) - 1) * float((1 << cell_bits) - 1)
        dtype: type[np.floating] = np.float32 if bound < 2**24 else np.float64  # sums exact either way
        for replica in range(replicas):
            sel = index if replicas == 1 else index[replica_of == replica]
            g = arrays.conductance[replica].astype(dtype, copy=False)
            ratio = (
                relative_conductance(g, cell_bits, self.config.device, arrays.top_level).astype(np.float32)
                if scaled
                else np.zeros((0, 0), np.float32)
            )
            part = out if replicas == 1 else np.zeros((len(sel), columns), dtype=np.int64)
            part_saturated = saturated if replicas == 1 else np.zeros(len(sel), dtype=np.int64)
            kernels.read_arrays(
                x if replicas == 1 else x[sel],
                zero_point,
                dac_bits,
                phase_planes,
                g,
                ratio,
                sigma_cell,
                sigma_column,
                arrays.offsets[replica],
                step,
                top,
                weights,
                key,
                sel + first_vector,
                part,
                part_saturated,
            )
            if replicas > 1:
                out[sel] = part
                saturated[sel] = part_saturated
        self._count(chain, len(x), int(saturated.sum()))
        return out


def _layer_name(chain: _Chain) -> str:
    """The crossbar layer a read chain belongs to, as the crossbar report names it (its location)."""
    return chain.adc.location.name or "<unknown>"


def _planes(chain: _Chain) -> int:
    """Bit planes each input vector of ``chain`` streams (both phases of a signed stream)."""
    return chain.planes.result.type.shape[0]  # type: ignore[attr-defined]


def _signed_weights(chain: _Chain) -> np.ndarray:
    """The block's signed integer weights ``[rows, cols]``: slices shifted and added, the negative array
    subtracted, the offset code's offset taken out (what the shift-add's offset term does to the sums)."""
    signed = _signed_levels(chain.program.tensor_attr("levels"), chain.program.attr("cell_bits"))
    return signed.astype(np.int64) - chain.shift_add.attr("weight_offset")  # exact: float64 holds these integers


def _signed_levels(conductance: np.ndarray, cell_bits: int) -> np.ndarray:
    """A group's signed weights ``[rows, cols]`` in level units (float64) from its arrays' levels or conductances
    ``[signs, slices, rows, cols]``: slices shifted and added, a pair's negative array subtracted."""
    signs, slices = conductance.shape[:2]
    sign = np.array([1.0, -1.0][:signs]).reshape(-1, 1, 1, 1)
    shift = np.exp2(np.arange(slices) * cell_bits).reshape(1, -1, 1, 1)
    return (conductance.astype(np.float64) * sign * shift).sum(axis=(0, 1))
