"""The options of crossbar arithmetic, each declared once: its default, the values it admits and what it means.

The lowering passes make their fields from these (``bit-slice``'s ``cell-bits``, ``tile``'s ``array-rows``), and so
do the compiler's ``CrossbarOptions`` and the ``cimc`` flags that set them, so a bound or a default has one source.
"""

from __future__ import annotations

from cimc.ir.dialects.cim import SIGN_ENCODINGS, WEIGHT_SCALINGS
from cimc.ir.options import Option, Rule
from cimc.ir.target.chip import MAX_ARRAY_SIZE
from cimc.passes.crossbar_match import MAX_BITS

#: How codes stream through the DACs (see ``cimc.passes.bit_slice``).
INPUT_ENCODINGS = ("signed", "unsigned")

#: The widest ADC: the i32 currents' full scale (as ``cim.adc`` admits).
MAX_ADC_BITS = 31

#: The widest cell and DAC step: levels and bit planes are stored as ui8.
MAX_LEVEL_BITS = 8

INPUT_BITS = Option(8, "bits of the input codes", Rule(low=1, high=MAX_BITS))
WEIGHT_BITS = Option(8, "bits of the signed weights", Rule(low=2, high=MAX_BITS))
WEIGHT_SCALING = Option(
    "column",
    "quantize float weights over each output column's largest weight or the whole layer's (tensor, as aihwkit maps "
    "a tile's largest weight to g_max)",
    Rule(choices=WEIGHT_SCALINGS),
)
CELL_BITS = Option(2, "bits per memory cell", Rule(low=1, high=MAX_LEVEL_BITS))
DAC_BITS = Option(
    1, "bits per DAC step: inputs stream in ceil(input-bits / dac-bits) bit planes", Rule(low=1, high=MAX_LEVEL_BITS)
)
ADC_BITS = Option(
    0, "ADC resolution; 0 reads every array column exactly, the reference", Rule(low=0, high=MAX_ADC_BITS)
)
SIGN_ENCODING = Option(
    "differential", "signed weights as differential array pairs or offset codes", Rule(choices=SIGN_ENCODINGS)
)
ARRAY_ROWS = Option(64, "rows (word lines) of a crossbar array", Rule(low=1, high=MAX_ARRAY_SIZE))
ARRAY_COLS = Option(64, "columns (bit lines) of a crossbar array", Rule(low=1, high=MAX_ARRAY_SIZE))
INPUT_ENCODING = Option(
    "signed",
    "stream codes around their zero point in a positive and a negative phase (signed), or as they are (unsigned: "
    "the arrays also carry the zero point's current)",
    Rule(choices=INPUT_ENCODINGS),
)
ARRAY_BUDGET = Option(0, "arrays replication may use; 0: twice the unreplicated count", Rule(low=0))
