"""``bit-slice``: each ``cim.linear`` of one array's height as the chip computes it, from DAC bit planes to shift-add.

A weight of ``weight_bits`` bits does not fit one cell of ``cell_bits`` bits, and a code of ``input_bits`` bits
does not fit one DAC step of ``dac_bits`` bits; so a row block becomes

- ``cim.bit_planes``: the codes streamed ``dac_bits`` at a time (one per codes value and width, shared by every row
  block that reads those codes, placed right after the codes are made); codes with a zero point z > 0 stream
  signed (``input-encoding=signed``, the default): ``codes - z`` in a positive and a negative phase, so the
  arrays never carry the zero point's common current, whose analog error the digital zero-point correction
  cannot take out (it wrecks transformer layers, whose codes sit around a mid-range zero point); the layer's
  ``cim.dequantize`` then takes no zero point out. ``unsigned`` streams the codes as they are;
- ``cim.program``: the weights as conductance levels (their width kept as its ``weight_bits``),
  ``ceil(weight_bits / cell_bits)`` slices of ``cell_bits`` bits each; signed weights as a ``differential`` pair of
  arrays (positive and negative parts) or as ``offset`` codes ``w + 2^(weight_bits - 1)`` in one array, the offset
  taken out digitally from the sum of the codes;
- ``cim.mvm``: one array read per bit plane;
- ``cim.adc``: every column read by an ADC of ``adc_bits`` bits over the full scale an array can reach, the
  worst-case column sum (``adc_bits = 0``, or an ADC at least that wide: as many bits as that full scale, so the
  read is exact); a narrower ADC's full scale may then be set lower from data, which no pass reads
  (``cimc.compiler.calibration.calibrate_adc_ranges``);
- ``cim.shift_add``: slices, planes and signs recombined into the block's partial sums.

With an exact ADC the result equals the ``cim.linear`` bit for bit. After this pass no ``cim.linear`` remains
(checked); ``tile`` must run first, so that every row block fits one array's height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimc.ir.attributes import Attribute, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import UNKNOWN, BlockArgument, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import (
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    Im2ColOp,
    LinearOp,
    MvmOp,
    ProgramOp,
    QuantizeOp,
    ShiftAddOp,
    dequantize_of,
    exact_adc_bits,
    slices_for,
)
from cimc.ir.pass_manager import Pass, register_pass
from cimc.passes.common import blob_name
from cimc.passes.crossbar_options import (
    ADC_BITS,
    ARRAY_COLS,
    ARRAY_ROWS,
    CELL_BITS,
    DAC_BITS,
    INPUT_ENCODING,
    SIGN_ENCODING,
)
from cimc.passes.tile import linear_weights, linears


def weight_levels(weights: np.ndarray, weight_bits: int, cell_bits: int, sign_encoding: str) -> tuple[np.ndarray, int]:
    """Conductance levels ``[signs, slices, rows, cols]`` (ui8) holding signed ``weights``, and the weight offset
    the shift-adder takes out again (0 for differential pairs): slice ``s`` holds bits ``s * cell_bits`` and up."""
    w = weights.astype(np.int32)  # int8 or int16 weights: their negation and offset codes fit
    if sign_encoding == "differential":
        offset = 0
        stored = np.stack([np.maximum(w, 0), np.maximum(-w, 0)])
    else:
        offset = 1 << (weight_bits - 1)
        stored = (w + offset)[None]
    slices = slices_for(weight_bits, cell_bits)
    levels = np.empty((len(stored), slices, *w.shape), dtype=np.uint8)
    for s in range(slices):
        levels[:, s] = (stored >> (s * cell_bits)) & ((1 << cell_bits) - 1)
    return levels, offset


def zero_point_of(codes: Value) -> int:
    """The zero point of codes made by ``cim.quantize`` (directly or through ``cim.im2col``); 0 when unknown."""
    op = getattr(codes, "op", None)
    if isinstance(op, Im2ColOp):
        return op.attr("fill")
    if isinstance(op, QuantizeOp):
        return op.attr("zero_point")
    return 0


def bit_planes(codes: Value, dac_bits: int, input_bits: int, zero_point: int = 0) -> Value:
    """The ``cim.bit_planes`` of ``codes`` for this DAC, code width and signed stream (``zero_point`` > 0): the one
    already made, else a new one right after the codes' definition (so it dominates every row block reading
    them), located where the codes are made."""
    attributes: dict[str, Attribute] = {"dac_bits": IntAttr(dac_bits), "input_bits": IntAttr(input_bits)}
    if zero_point:
        attributes["zero_point"] = IntAttr(zero_point)
    for use in codes.uses:
        if isinstance(use.op, BitPlanesOp) and use.op.attributes == attributes:
            return use.op.result
    if isinstance(codes, OpResult):
        block, location = codes.op.parent, codes.op.location
        assert block is not None
        anchor = block.ops[block.ops.index(codes.op) + 1]
    else:
        assert isinstance(codes, BlockArgument)
        block, location = codes.block, UNKNOWN
        anchor = block.ops[0]
    return block.insert_before(anchor, BitPlanesOp.build(codes, attributes=attributes, location=location)).result


@register_pass
@dataclass(frozen=True)
class BitSlicePass(Pass):
    """Lower every ``cim.linear`` to bit planes, programmed slices, array reads, ADC reads and shift-add."""

    name = "bit-slice"
    cell_bits: int = CELL_BITS.field()
    dac_bits: int = DAC_BITS.field()
    adc_bits: int = ADC_BITS.field()
    sign_encoding: str = SIGN_ENCODING.field()
    array_rows: int = ARRAY_ROWS.field()
    array_cols: int = ARRAY_COLS.field()
    input_encoding: str = INPUT_ENCODING.field()

    def run(self, module: ModuleOp) -> None:
        plan = [(op, *self.signed_stream(op)) for op in linears(module)]  # decided before any dequantize changes
        for op, zero_point, _ in plan:
            self.slice_linear(op, zero_point)
        for _, zero_point, dequantize in plan:
            if zero_point and dequantize is not None:  # the arrays summed codes - z: nothing left to take out
                dequantize.attributes["zero_point"] = IntAttr(0)
        left = linears(module)
        if left:
            raise left[0].error("remains after bit-slice")

    def slice_linear(self, op: LinearOp, zero_point: int = 0) -> None:
        """Replace ``op`` by its crossbar form, its codes streamed signed around ``zero_point`` when nonzero."""
        if op.rows > self.array_rows:
            raise op.error(
                f"{op.rows} rows do not fit arrays of {self.array_rows} rows; run "
                f"'tile{{array-rows={self.array_rows}}}' before 'bit-slice'"
            )
        block = op.parent
        assert block is not None
        codes = op.operands[0]
        weight_bits, input_bits = op.attr("weight_bits"), op.attr("input_bits")
        dac_bits = min(self.dac_bits, input_bits)  # a code narrower than the DAC streams in one step
        levels, weight_offset = weight_levels(linear_weights(op), weight_bits, self.cell_bits, self.sign_encoding)
        planes = bit_planes(codes, dac_bits, input_bits, zero_point)

        def add(new: ProgramOp | MvmOp | AdcOp | ShiftAddOp) -> Value:
            return block.insert_before(op, new).result

        program = add(
            ProgramOp.build(
                attributes={
                    # named by row block: conv2.r1.levels holds rows 64..127 of conv2 on 64-row arrays
                    "levels": tensor_attr(
                        levels, blob_name(op, f".r{op.attr('row_offset') // self.array_rows}.levels")
                    ),
                    "weight_bits": IntAttr(weight_bits),
                    "cell_bits": IntAttr(self.cell_bits),
                    "sign_encoding": StringAttr(self.sign_encoding),
                    "array_rows": IntAttr(self.array_rows),
                    "array_cols": IntAttr(self.array_cols),
                },
                location=op.location,
            )
        )
        row_offset = op.attributes.get("row_offset", IntAttr(0))
        currents = add(MvmOp.build(planes, program, attributes={"row_offset": row_offset}, location=op.location))
        full_scale = exact_adc_bits(op.rows, dac_bits, self.cell_bits)
        adc: dict[str, Attribute] = {
            "bits": IntAttr(min(self.adc_bits, full_scale) if self.adc_bits else full_scale),
            "full_scale_bits": IntAttr(full_scale),
        }
        readings = add(AdcOp.build(currents, attributes=adc, location=op.location))
        recombine: dict[str, Attribute] = {"dac_bits": IntAttr(dac_bits), "cell_bits": IntAttr(self.cell_bits)}
        if zero_point:
            recombine["input_zero_point"] = IntAttr(zero_point)
        if weight_offset:
            recombine |= {"weight_offset": IntAttr(weight_offset), "row_offset": row_offset, "rows": IntAttr(op.rows)}
        partial = add(
            ShiftAddOp.build(readings, codes if weight_offset else None, attributes=recombine, location=op.location)
        )
        op.result.replace_all_uses_with(partial)
        op.erase()

    def signed_stream(self, op: LinearOp) -> tuple[int, DequantizeOp | None]:
        """The zero point to stream ``op``'s codes around (0: unsigned) and the dequantize that then keeps no zero
        point; signed only where that dequantize is found, so the layer's arithmetic stays exact."""
        zero_point, input_bits = zero_point_of(op.operands[0]), op.attr("input_bits")
        dequantize = dequantize_of(op.result)
        signed = self.input_encoding == "signed" and 0 < zero_point < 1 << input_bits
        if not signed or dequantize is None or dequantize.attr("zero_point") != zero_point:
            return 0, None
        return zero_point, dequantize
