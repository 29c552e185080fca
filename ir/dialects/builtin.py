"""The ``builtin`` and ``func`` dialects: the module, functions and their return.

A module holds functions; a function is ``func.func`` with a ``sym_name``, a ``function_type`` and one block whose
arguments are its inputs. The names of inputs and outputs (the ONNX graph's, used to key ``.npz`` files) are kept
as ``graph.name`` entries of the function's ``arg_attrs`` and ``res_attrs``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cimc.ir.attributes import ArrayAttr, DictAttr, StringAttr, TypeAttr
from cimc.ir.core import (
    AttrDef,
    Block,
    OpDef,
    OperandDef,
    Operation,
    Region,
    Value,
    register_op,
)
from cimc.ir.types import FunctionType, TensorType, Type

NAME_KEY = "graph.name"


@register_op
class ModuleOp(Operation):
    """The top-level container of functions.

    ``"builtin.module"() ({ "func.func"() <{...}> ({...}) : () -> () }) : () -> ()``
    """

    name = "builtin.module"
    isolated = True

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - the generic constructor's
        super().__init__(*args, **kwargs)
        if not self.regions:
            self.add_region(Region([Block()]))

    @property
    def body(self) -> Block:
        return self.regions[0].block

    @property
    def functions(self) -> list[FuncOp]:
        return [op for op in self.body.ops if isinstance(op, FuncOp)]

    def function(self, sym_name: str = "main") -> FuncOp:
        """The function named ``sym_name``."""
        for func in self.functions:
            if func.sym_name == sym_name:
                return func
        raise KeyError(f"module has no function '{sym_name}'")

    def verify_(self) -> None:
        if len(self.regions) != 1 or len(self.regions[0].blocks) != 1:
            raise self.error("must have one region with one block")
        if self.body.args:
            raise self.error("body block must have no arguments")

    def __str__(self) -> str:
        from cimc.ir.printer import Printer

        return Printer().module_text(self)


@register_op
class FuncOp(Operation):
    """A function: one block whose arguments are the inputs, ended by ``func.return``.

    ``"func.func"() <{function_type = (tensor<?x64xf32>) -> tensor<?x10xf32>, sym_name = "main"}> ({...}) : () -> ()``
    """

    name = "func.func"
    isolated = True
    definition = OpDef(
        attributes={
            "sym_name": AttrDef(StringAttr),
            "function_type": AttrDef(TypeAttr),
            "arg_attrs": AttrDef(ArrayAttr, default=()),
            "res_attrs": AttrDef(ArrayAttr, default=()),
        }
    )

    @staticmethod
    def create(sym_name: str, inputs: Sequence[tuple[str, TensorType]], result_types: Sequence[Type]) -> FuncOp:
        """A new function with named inputs and an empty body (to be ended by ``func.return``)."""
        func = FuncOp(
            attributes={
                "sym_name": StringAttr(sym_name),
                "function_type": TypeAttr(FunctionType(tuple(t for _, t in inputs), tuple(result_types))),
                "arg_attrs": ArrayAttr(tuple(DictAttr(((NAME_KEY, StringAttr(n)),)) for n, _ in inputs)),
            },
            regions=[Region([Block([t for _, t in inputs])])],
        )
        return func

    @property
    def sym_name(self) -> str:
        return self.attr("sym_name")

    @property
    def function_type(self) -> FunctionType:
        return self.attr("function_type")

    @property
    def body(self) -> Block:
        return self.regions[0].block

    @property
    def arguments(self) -> list[Value]:
        return list(self.body.args)

    @property
    def return_op(self) -> ReturnOp:
        last = self.body.ops[-1] if self.body.ops else None
        if not isinstance(last, ReturnOp):
            raise self.error("body must end with 'func.return'")
        return last

    def _names(self, key: str, count: int, prefix: str) -> list[str]:
        entries = self.attr(key)
        names = []
        for i in range(count):
            entry = entries[i].get(NAME_KEY) if i < len(entries) else None
            names.append(entry.value if isinstance(entry, StringAttr) else f"{prefix}{i}")
        return names

    @property
    def input_names(self) -> list[str]:
        """The inputs' names (the ONNX graph inputs'), ``arg<i>`` where none was given."""
        return self._names("arg_attrs", len(self.body.args), "arg")

    @property
    def output_names(self) -> list[str]:
        """The outputs' names (the ONNX graph outputs'), ``result<i>`` where none was given."""
        return self._names("res_attrs", len(self.function_type.results), "result")

    def set_output_names(self, names: Sequence[str]) -> None:
        self.attributes["res_attrs"] = ArrayAttr(tuple(DictAttr(((NAME_KEY, StringAttr(n)),)) for n in names))

    def update_function_type(self) -> None:
        """Refresh ``function_type`` from the block arguments and the returned values."""
        inputs = tuple(a.type for a in self.body.args)
        results = tuple(v.type for v in self.return_op.operands)
        self.attributes["function_type"] = TypeAttr(FunctionType(inputs, results))

    def verify_(self) -> None:
        if len(self.regions) != 1 or len(self.regions[0].blocks) != 1:
            raise self.error("must have one region with one block")
        ftype = self.function_type
        if not isinstance(ftype, FunctionType):
            raise self.error("'function_type' must be a function type")
        if tuple(a.type for a in self.body.args) != ftype.inputs:
            raise self.error("block argument types differ from the function type's inputs")
        if tuple(v.type for v in self.return_op.operands) != ftype.results:
            raise self.error("returned types differ from the function type's results")


@register_op
class ReturnOp(Operation):
    """Ends a function, returning its operands: ``"func.return"(%3) : (tensor<1x10xf32>) -> ()``."""

    name = "func.return"
    definition = OpDef(operands=(OperandDef("operands", "variadic"),))

    def verify_(self) -> None:
        if self.parent is None or self.parent.ops[-1] is not self:
            raise self.error("must be the last op of its block")


def new_module(functions: Sequence[FuncOp] = ()) -> ModuleOp:
    """An empty module, or one holding ``functions``."""
    module = ModuleOp()
    for func in functions:
        module.body.append(func)
    return module
