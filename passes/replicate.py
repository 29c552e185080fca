"""``replicate``: more copies of the arrays of the conv layers that bound the pipeline, under an array budget.

In a layer-pipelined chip (ISAAC, Shafiee et al., ISCA 2016; PUMA, Ankit et al., ASPLOS 2019) every layer works on
its own arrays at once, so the slowest layer sets the throughput. A convolution reads its arrays once per output
pixel and bit plane, a fully connected layer once per bit plane, so early conv layers with large feature maps
dominate. Copies of a layer's arrays serve alternate input vectors in parallel, dividing its rounds.

A layer is the ``cim.program`` ops sharing a Location (one ONNX node); it is a conv layer when its reads stream
bit planes of ``cim.im2col`` patches. Its latency proxy is its MVM rounds per input: input vectors per sample
(the output pixels, the planes' dimensions between the batch and the contraction axes) x bit planes /
replication. Greedy: the conv layer with the most rounds (the first in module order on a tie) gets one more copy,
as long as the module's arrays stay within the budget and no layer has more copies than input vectors; when the
slowest layer's copy does not fit, replication stops, since a copy anywhere else leaves the bottleneck as it is.
The factors are computed from scratch (running the pass twice gives the same IR) and set as ``replication`` on
every ``cim.program`` of the layer.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from fractions import Fraction

from cimc.ir.attributes import IntAttr
from cimc.ir.core import Location, OpResult
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import BitPlanesOp, Im2ColOp, MvmOp, ProgramOp
from cimc.ir.pass_manager import Pass, PipelineError, register_pass
from cimc.ir.types import TensorType
from cimc.passes.crossbar_options import ARRAY_BUDGET


@dataclass
class Layer:
    """The programmed arrays of one ONNX node and what replication needs to know of them."""

    location: Location
    programs: list[ProgramOp] = field(default_factory=list)
    #: Input vectors per sample and bit planes of each read, for conv layers; (0, 0) for the others.
    vectors: int = 0
    planes: int = 0
    replication: int = 1

    @property
    def arrays(self) -> int:
        """Physical arrays of one copy of the layer."""
        return sum(p.arrays // p.attr("replication") for p in self.programs)

    @property
    def rounds(self) -> Fraction:
        """MVM rounds per input sample: the layer's latency in array reads."""
        return Fraction(self.vectors * self.planes, self.replication)


def module_layers(module: ModuleOp) -> list[Layer]:
    """The layers of the module in order of their first ``cim.program``, conv layers with their reads' shape."""
    layers: dict[Location, Layer] = {}
    for op in module.walk():
        if isinstance(op, ProgramOp):
            layers.setdefault(op.location, Layer(op.location)).programs.append(op)
    for layer in layers.values():
        reads = [use.op for p in layer.programs for use in p.result.uses if isinstance(use.op, MvmOp)]
        if reads and all(_streams_patches(mvm) for mvm in reads):
            planes = reads[0].operands[0].type
            assert isinstance(planes, TensorType)
            if None in reads[0].vector_dims:
                raise reads[0].error(f"replicating a conv layer needs static output sizes, got planes {planes}")
            layer.vectors, layer.planes = reads[0].vectors, planes.shape[0]  # type: ignore[assignment]
    return list(layers.values())


def _streams_patches(mvm: MvmOp) -> bool:
    """Whether the read's bit planes are of a convolution's patches (``cim.im2col`` codes)."""
    planes = mvm.operands[0]
    source = planes.op if isinstance(planes, OpResult) else None
    if not isinstance(source, BitPlanesOp):
        return False
    codes = source.operands[0]
    return isinstance(codes, OpResult) and isinstance(codes.op, Im2ColOp)


def choose_replication(layers: list[Layer], budget: int) -> None:
    """Set each layer's ``replication`` greedily (see the module docstring); ``budget`` 0 means twice the arrays
    of the unreplicated layers."""
    total = sum(layer.arrays for layer in layers)
    budget = budget or 2 * total
    if budget < total:
        raise PipelineError(
            f"pass 'replicate': the array budget {budget} is below the {total} arrays the module needs unreplicated"
        )
    for layer in layers:
        layer.replication = 1
    # the slowest layer on top; the index breaks ties in module order
    heap = [(-layer.rounds, index) for index, layer in enumerate(layers) if layer.vectors > 1]
    heapq.heapify(heap)
    while heap:
        layer = layers[heap[0][1]]
        if total + layer.arrays > budget:
            return
        _, index = heapq.heappop(heap)
        layer.replication += 1
        total += layer.arrays
        if layer.replication < layer.vectors:
            heapq.heappush(heap, (-layer.rounds, index))


@register_pass
@dataclass(frozen=True)
class ReplicatePass(Pass):
    """Copy the arrays of the conv layers that bound the pipeline, within ``budget`` arrays (0: twice the
    unreplicated count)."""

    name = "replicate"
    budget: int = ARRAY_BUDGET.field()

    def run(self, module: ModuleOp) -> None:
        layers = module_layers(module)
        choose_replication(layers, self.budget)
        for layer in layers:
            for program in layer.programs:
                if layer.replication > 1:
                    program.attributes["replication"] = IntAttr(layer.replication)
                else:
                    program.attributes.pop("replication", None)
