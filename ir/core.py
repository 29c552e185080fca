"""The IR core: SSA values with use lists, operations, blocks, regions, and the op registry.

Values have identity: each knows its defining op or block, and every use is recorded as ``(op, operand_index)``.
Only ``Operation.set_operand`` and ``Value.replace_all_uses_with`` change operands, and both keep use lists true.
Operations are declared once per dialect as small classes (see ``OpDef``) and registered by name, so the parser,
verifier and interpreter find them from their ``dialect.op`` name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from cimc.ir.attributes import Attribute, DenseArrayAttr
from cimc.ir.types import ElementType, Type

SEGMENTS = "operandSegmentSizes"


class VerifyError(Exception):
    """An IR rule is broken; the message names the op, its location and the rule."""


@dataclass(frozen=True)
class Location:
    """Where an op came from: the ONNX node name (``loc("Conv_3")``), or unknown."""

    name: str | None = None

    def __str__(self) -> str:
        from cimc.ir.attributes import quote

        return "loc(unknown)" if self.name is None else f"loc({quote(self.name)})"


UNKNOWN = Location()


@dataclass(frozen=True, slots=True)
class Use:
    """One use of a value: operand ``index`` of ``op``."""

    op: Operation
    index: int


class Value:
    """An SSA value: an op result or a block argument. Compared by identity."""

    __slots__ = ("type", "uses")

    def __init__(self, type: Type) -> None:
        self.type = type
        self.uses: list[Use] = []

    @property
    def has_uses(self) -> bool:
        return bool(self.uses)

    def replace_all_uses_with(self, other: Value) -> None:
        """Point every use of this value at ``other``."""
        if other is self:
            return
        for use in tuple(self.uses):
            use.op.set_operand(use.index, other)


class OpResult(Value):
    """Result ``index`` of ``op``."""

    __slots__ = ("op", "index")

    def __init__(self, type: Type, op: Operation, index: int) -> None:
        super().__init__(type)
        self.op = op
        self.index = index

    @property
    def owner(self) -> Operation:
        return self.op


class BlockArgument(Value):
    """Argument ``index`` of ``block``."""

    __slots__ = ("block", "index")

    def __init__(self, type: Type, block: Block, index: int) -> None:
        super().__init__(type)
        self.block = block
        self.index = index

    @property
    def owner(self) -> Block:
        return self.block


# --- declarations --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperandDef:
    """A declared operand group: ``single`` (exactly one), ``optional`` (0 or 1) or ``variadic`` (any number)."""

    name: str
    kind: str = "single"


@dataclass(frozen=True)
class ResultDef:
    """A declared result group: ``single``, ``optional`` or ``variadic``."""

    name: str
    kind: str = "single"


REQUIRED = object()


@dataclass(frozen=True)
class AttrDef:
    """A declared attribute: the attribute class it must be and its default (``REQUIRED`` when it has none)."""

    kind: type[Attribute] | tuple[type[Attribute], ...]
    default: Any = REQUIRED


@dataclass(frozen=True)
class OpDef:
    """What an op takes and gives: operand groups, result groups, attributes."""

    operands: tuple[OperandDef, ...] = ()
    results: tuple[ResultDef, ...] = ()
    attributes: dict[str, AttrDef] = field(default_factory=dict)

    @property
    def needs_segments(self) -> bool:
        """MLIR's rule: more than one non-single operand group needs ``operandSegmentSizes``."""
        return sum(d.kind != "single" for d in self.operands) > 1


OPS: dict[str, type[Operation]] = {}


def register_op(cls: type[Operation]) -> type[Operation]:
    """Class decorator: make an op findable by its name (parser, verifier, interpreter)."""
    if cls.name in OPS and OPS[cls.name] is not cls:
        raise ValueError(f"op '{cls.name}' registered twice")
    OPS[cls.name] = cls
    return cls


# --- operations ----------------------------------------------------------------------------------------------


class Operation:
    """An operation: ``dialect.op`` with operands, results, attributes, regions and a location.

    Subclasses set ``name`` and ``definition`` and may override ``verify_`` (op-specific rules) and
    ``infer_result_types`` (used by ``build``).
    """

    name: ClassVar[str] = ""
    definition: ClassVar[OpDef] = OpDef()
    #: Whether the op's regions see only their own block arguments (functions, modules, digital units).
    isolated: ClassVar[bool] = False

    def __init__(
        self,
        operands: Sequence[Value] = (),
        result_types: Sequence[Type] = (),
        attributes: dict[str, Attribute] | None = None,
        regions: Sequence[Region] = (),
        location: Location = UNKNOWN,
    ) -> None:
        self._operands: list[Value] = []
        self.results = [OpResult(t, self, i) for i, t in enumerate(result_types)]
        self.attributes: dict[str, Attribute] = dict(attributes or {})
        self.regions: list[Region] = []
        self.parent: Block | None = None
        self.location = location
        for value in operands:
            self._operands.append(value)
            value.uses.append(Use(self, len(self._operands) - 1))
        for region in regions:
            self.add_region(region)

    # construction
    @classmethod
    def build(
        cls,
        *operands: Value | Sequence[Value] | None,
        attributes: dict[str, Attribute] | None = None,
        result_types: Sequence[Type] | None = None,
        location: Location = UNKNOWN,
    ) -> Self:
        """Create an op from one entry per declared operand group (a value, None, or a list for variadics);
        segment sizes are filled in and result types inferred when not given."""
        flat: list[Value] = []
        sizes: list[int] = []
        for entry in operands:
            group = [] if entry is None else [entry] if isinstance(entry, Value) else list(entry)
            flat.extend(group)
            sizes.append(len(group))
        attributes = dict(attributes or {})
        if cls.definition.needs_segments:
            sizes += [0] * (len(cls.definition.operands) - len(sizes))
            attributes[SEGMENTS] = DenseArrayAttr(ElementType("i32"), tuple(sizes))
        if result_types is None:
            result_types = cls.infer_result_types([v.type for v in flat], attributes)
        return cls(flat, result_types, attributes, location=location)

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        """Result types from operand types and attributes; ops that can infer override this."""
        raise VerifyError(f"'{cls.name}' cannot infer its result types; pass result_types")

    # operands and results
    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    def set_operand(self, index: int, value: Value) -> None:
        """Replace operand ``index``, keeping both use lists true."""
        old = self._operands[index]
        old.uses.remove(Use(self, index))
        self._operands[index] = value
        value.uses.append(Use(self, index))

    def drop_operands(self) -> None:
        """Remove every operand (and its use), as when erasing."""
        for i, value in enumerate(self._operands):
            value.uses.remove(Use(self, i))
        self._operands = []

    def operand_groups(self) -> list[list[Value]]:
        """Operands split per declared group, using ``operandSegmentSizes`` where the op has it."""
        defs = self.definition.operands
        if self.definition.needs_segments and SEGMENTS in self.attributes:
            sizes = list(self.attributes[SEGMENTS].value)  # type: ignore[attr-defined]
        else:
            fixed = sum(d.kind == "single" for d in defs)
            extra = len(self._operands) - fixed
            # without segment sizes an op has at most one non-single group: it takes what the singles leave
            sizes = [1 if d.kind == "single" else max(extra, 0) for d in defs]
        groups, start = [], 0
        for size in sizes:
            groups.append(self._operands[start : start + size])
            start += size
        return groups

    def operand(self, name: str) -> Value | None:
        """The operand of a single or optional group, by its declared name (None when absent)."""
        for d, group in zip(self.definition.operands, self.operand_groups()):
            if d.name == name:
                return group[0] if group else None
        raise KeyError(f"'{self.name}' has no operand '{name}'")

    def required_operand(self, name: str) -> Value:
        """The operand of a single group, by its declared name; a VerifyError when it is missing."""
        value = self.operand(name)
        if value is None:
            raise self.error(f"operand '{name}' is missing")
        return value

    @property
    def result(self) -> OpResult:
        """The only result of a single-result op."""
        if len(self.results) != 1:
            raise ValueError(f"'{self.name}' has {len(self.results)} results")
        return self.results[0]

    # attributes
    def attr(self, key: str) -> Any:
        """The Python value of an attribute, or its declared default when absent."""
        if key in self.attributes:
            attr = self.attributes[key]
            return getattr(attr, "value", attr)
        spec = self.definition.attributes.get(key)
        if spec is None or spec.default is REQUIRED:
            raise KeyError(f"'{self.name}' has no attribute '{key}'")
        return spec.default

    # regions and structure
    def add_region(self, region: Region) -> None:
        region.parent = self
        self.regions.append(region)

    def walk(self) -> Iterator[Operation]:
        """This op and every op nested in it, parents before children."""
        yield self
        for region in self.regions:
            for block in region.blocks:
                for op in list(block.ops):
                    yield from op.walk()

    def erase(self) -> None:
        """Remove this op from its block and drop its operands; its results must be unused."""
        for result in self.results:
            if result.uses:
                raise ValueError(f"cannot erase '{self.name}' at {self.location}: result {result.index} still used")
        if self.parent is not None:
            self.parent.remove(self)
        self.drop_operands()

    def verify_(self) -> None:
        """Op-specific rules; raise ``VerifyError`` via ``self.error``. The default has none."""

    def error(self, rule: str) -> VerifyError:
        """A ``VerifyError`` naming this op, its location and the broken rule."""
        where = f" at {self.location}" if self.location.name is not None else ""
        return VerifyError(f"'{self.name}' op{where}: {rule}")

    def __str__(self) -> str:
        from cimc.ir.printer import Printer

        return Printer().op_text(self)


class Block:
    """A list of ops with typed arguments."""

    def __init__(self, arg_types: Sequence[Type] = ()) -> None:
        self.args = [BlockArgument(t, self, i) for i, t in enumerate(arg_types)]
        self.ops: list[Operation] = []
        self.parent: Region | None = None

    def append(self, op: Operation) -> Operation:
        op.parent = self
        self.ops.append(op)
        return op

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        op.parent = self
        self.ops.insert(self.ops.index(anchor), op)
        return op

    def remove(self, op: Operation) -> None:
        self.ops.remove(op)
        op.parent = None

    def add_argument(self, type: Type) -> BlockArgument:
        arg = BlockArgument(type, self, len(self.args))
        self.args.append(arg)
        return arg


class Region:
    """A list of blocks owned by an op (our ops use single-block regions)."""

    def __init__(self, blocks: Sequence[Block] = ()) -> None:
        self.blocks: list[Block] = []
        self.parent: Operation | None = None
        for block in blocks:
            self.add_block(block)

    def add_block(self, block: Block) -> Block:
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def block(self) -> Block:
        """The only block."""
        if len(self.blocks) != 1:
            raise ValueError(f"region has {len(self.blocks)} blocks")
        return self.blocks[0]
