"""The interpreter: runs a function op by op, each op computing its results with its ``evaluate`` method.

With the ``graph`` dialect's numpy implementations this is the reference interpreter, checked against
onnxruntime. Inputs are checked against the function's types first, and each intermediate is freed after its
last use, so memory follows the live set rather than the whole graph. A result of static type is sized before its op
runs and refused past the tensor limit; ops whose output size comes from operand values (ConstantOfShape, Expand,
Tile, Range, Pad, Resize, OneHot) size it themselves before allocating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from cimc.ir.core import Block, Operation, Value
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.limits import oversize
from cimc.ir.types import TensorType, Type

#: Called with each op and its argument arrays before the op runs.
Observer = Callable[[Operation, list[np.ndarray]], None]


class InterpreterError(Exception):
    """An input does not fit the function, or an op cannot be evaluated; the message names which and why."""


def bind_inputs(func: FuncOp, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Order and check the inputs: a mapping keyed by input names, or a sequence in argument order."""
    names = func.input_names
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(names))
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise InterpreterError(
                f"inputs must be named {names}; missing {missing}" + (f", unknown {unknown}" if unknown else "")
            )
        arrays = [np.asarray(inputs[n]) for n in names]
    else:
        arrays = [np.asarray(a) for a in inputs]
        if len(arrays) != len(names):
            raise InterpreterError(f"the model takes {len(names)} inputs {names}, got {len(arrays)}")
    for name, array, arg in zip(names, arrays, func.arguments):
        ttype = arg.type
        assert isinstance(ttype, TensorType)
        if not ttype.accepts(array.shape, array.dtype):
            raise InterpreterError(
                f"input '{name}' is {array.dtype}{list(array.shape)} but the model expects {ttype} ('?' is any size)"
            )
    return arrays


def run_function(
    func: FuncOp, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], observe: Observer | None = None
) -> dict[str, np.ndarray]:
    """Evaluate ``func`` on ``inputs``; returns its outputs keyed by output name. ``observe(op, args)`` is
    called before each op of the function body runs (calibration watches activations this way)."""
    return dict(zip(func.output_names, run_block(func.body, bind_inputs(func, inputs), observe)))


def run_block(block: Block, args: Sequence[np.ndarray], observe: Observer | None = None) -> list[np.ndarray]:
    """Evaluate a block on its arguments; returns the operands of its last op, the terminator (``func.return``,
    ``cim.yield``)."""
    env: dict[int, np.ndarray] = {}
    remaining: dict[int, int] = {}
    for arg, array in zip(block.args, args):
        env[id(arg)] = array
        remaining[id(arg)] = len(arg.uses)
    *body, terminator = block.ops
    for op in body:
        values = [env[id(v)] for v in op.operands]
        if observe is not None:
            observe(op, values)
        results = evaluate_op(op, values)
        for value, array in zip(op.results, results):
            env[id(value)] = array
            remaining[id(value)] = len(value.uses)
        for operand in op.operands:
            _release(operand, env, remaining)
    return [env[id(v)] for v in terminator.operands]


def _release(value: Value, env: dict[int, np.ndarray], remaining: dict[int, int]) -> None:
    remaining[id(value)] -= 1
    if remaining[id(value)] == 0:
        del env[id(value)]


def evaluate_op(op: Operation, args: list[np.ndarray]) -> list[np.ndarray]:
    """The results of one op on ``args`` by its ``evaluate`` (the exact executor's step); ``InterpreterError`` naming
    the op when it has none or fails."""
    evaluate = getattr(op, "evaluate", None)
    if evaluate is None:
        raise InterpreterError(f"'{op.name}' at {op.location} has no reference implementation")
    _refuse_oversize(op, [r.type for r in op.results])
    try:
        with np.errstate(all="ignore"):  # NaN and inf are values here, as in onnxruntime, not warnings
            results = evaluate(args)
    except InterpreterError:
        raise
    except Exception as exc:  # a kernel failing on real data: name the node
        raise InterpreterError(f"'{op.name}' at {op.location} failed: {exc}") from exc
    return [np.asarray(r) for r in results]


def _is_static(ttype: Type) -> bool:
    return isinstance(ttype, TensorType) and ttype.is_static


def _refuse_oversize(op: Operation, types: Sequence[Type]) -> None:
    """``InterpreterError`` naming the op when a static result type asks for a tensor past the limit."""
    for index, ttype in enumerate(types):
        if _is_static(ttype):
            assert isinstance(ttype, TensorType)
            problem = oversize(ttype.static_shape, ttype.dtype)
            if problem:
                raise InterpreterError(f"'{op.name}' at {op.location}: result {index}: {problem}")


def run_module(
    module: ModuleOp, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], observe: Observer | None = None
) -> dict[str, np.ndarray]:
    """Evaluate the module's ``main`` function (or its only function)."""
    return run_function(main_function(module), inputs, observe)


def main_function(module: ModuleOp) -> FuncOp:
    """The module's ``main`` function, or its only function; ``InterpreterError`` when it has neither."""
    functions = module.functions
    if len(functions) == 1:
        return functions[0]
    for func in functions:
        if func.sym_name == "main":
            return func
    names = ", ".join(f"'{f.sym_name}'" for f in functions) or "none"
    raise InterpreterError(f"the module has no function 'main' to run (its functions: {names})")
