"""The ONNX importer: an ONNX model in, a module of ``graph`` ops out.

``import_onnx`` loads the model (with its external data), refuses every operator the graph dialect lacks in one
message (outside the default domain it has onnxruntime's ``com.microsoft`` Inverse only: ``BY_DOMAIN_TYPE``),
checks it with ``onnx.checker``, converts it to the dialect's opset (``graph.OPSET``), infers its shapes, and
builds one function ``main``: graph inputs become its arguments, initializers and ``Constant`` nodes become
``graph.constant`` ops (large ones in resource blobs named after them), and each node becomes the graph op of its
type, located at the node's name. Whatever goes wrong is one ``OnnxImportError`` line naming the file, the node or
field, and what to do.

Checking, converting and inferring serialize the model each time, so they run on a *skeleton*: the model with its
large initializers stripped out (declared as typed inputs instead). Each weight is read into numpy once, and a
model whose weights exceed protobuf's 2 GB limit (external data) never has to be serialized whole.

``input_shapes`` fixes the sizes of dims a model leaves dynamic (image height and width, sequence length) before
shape inference, so every later type is as static as the input the chip will see.

A model is untrusted input: a few bytes can declare or compute a tensor far larger than memory, so every
initializer, Constant node, input and inferred value is sized against the tensor limit (``cimc.ir.limits``) before
anything allocates it, and refused naming the node. Constants must be finite: NaN nowhere, infinity only where a
node selects or clamps with it (``INFINITY_READERS``), as the weights a chip is programmed with cannot hold either.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from cimc.ir.core import Location, Value, VerifyError
from cimc.ir.dialects.builtin import FuncOp, ModuleOp, ReturnOp, new_module
from cimc.ir.dialects.graph import (
    BY_DOMAIN_TYPE,
    BY_ONNX_TYPE,
    INFINITY_READERS,
    OPSET,
    ConstantOp,
    GraphOp,
    infer_types,
    nonfinite,
)
from cimc.ir.dialects.graph_onnx import attribute_from_onnx, tensor_type_from_onnx
from cimc.ir.limits import INT64_MAX, oversize
from cimc.ir.types import TensorType, Type
from cimc.ir.verifier import verify

#: Initializers with more elements than this are kept out of the skeleton that onnx checks, converts and infers.
#: Values that shape inference propagates (shapes, axes, pads, scales) are far smaller.
SKELETON_ELEMENTS = 1024

#: ONNX's data propagation spells out every 1-D tensor an Add, Concat, Gather, Slice (...) reads as a list of
#: dims, about 140 bytes each: a graph with a longer 1-D tensor, or one whose length only data propagation would
#: reveal (read off data by ConstantOfShape, Expand, Reshape, Resize), is inferred without it.
DATA_PROP_LENGTH = 1 << 16
_SHAPE_DATA_READERS = frozenset({"ConstantOfShape", "Expand", "Reshape", "Resize", "CenterCropPad"})

_DEFAULT_DOMAINS = ("", "ai.onnx")
_SUBGRAPH_KINDS = (AttributeProto.GRAPH, AttributeProto.GRAPHS)
_SHOWN_NODES = 3  # node names listed per unsupported op type before "and N more"


class OnnxImportError(Exception):
    """The model cannot be imported; the one-line message names the file, the node or field, and what to do."""


def import_onnx(
    source: str | os.PathLike | onnx.ModelProto, input_shapes: Mapping[str, Sequence[int | None]] | None = None
) -> ModuleOp:
    """The module of ``graph`` ops equivalent to an ONNX model (a file path or an in-memory ``ModelProto``).

    ``input_shapes`` gives graph inputs, by name, the sizes of their dims: None leaves a dim as the model has it
    (dynamic, typically the batch); the key ``""`` names the only input of a single-input model."""
    if isinstance(source, onnx.ModelProto):
        where, base_dir, model = "<onnx.ModelProto>", None, source
    else:
        where = os.fspath(source)
        base_dir, model = os.path.dirname(os.path.abspath(where)), _load(where)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    _refuse_unsupported(model, where)
    _check_interface(model, where)
    skeleton, weights = _split_weights(model, where, base_dir)
    if input_shapes:
        _fix_input_shapes(skeleton, weights, input_shapes, where)
    _check(skeleton, where)
    skeleton = _convert_opset(skeleton, where)
    _refuse_unsupported(skeleton, where)
    skeleton = _infer_shapes(skeleton, where, data_prop=False)
    _refuse_oversized(skeleton, where)
    if _data_prop_is_safe(skeleton):
        skeleton = _infer_shapes(skeleton, where, data_prop=True)
    return _Builder(skeleton, weights, where).build()


# --- loading -----------------------------------------------------------------------------------------------------


def _load(path: str) -> onnx.ModelProto:
    """The model in ``path`` without its external data, or an error saying why the file is not one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise OnnxImportError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise OnnxImportError(f"{path}: cannot be read ({exc.strerror}); check the path and its permissions") from None
    if not data:
        raise OnnxImportError(f"{path}: the file is empty; export the model again")
    fmt = onnx.serialization.registry.get_format_from_file_extension(os.path.splitext(path)[1])
    if fmt not in (None, "protobuf"):  # .onnxtxt, .textproto, .json: onnx parses these text formats itself
        try:
            return onnx.load_model_from_string(data, format=fmt)
        except Exception as exc:  # each text format raises its own parse error
            raise OnnxImportError(f"{path}: not a valid ONNX {fmt} file: {_one_line(exc)}") from None
    if _is_text(data[:4096]):
        raise OnnxImportError(
            f"{path}: is a text file, not a binary ONNX model; export with onnx.save, or for ONNX text give the file "
            "an .onnxtxt (ONNX text syntax) or .textproto (protobuf text format) extension"
        )
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise OnnxImportError(f"{path}: {_damage(data)}") from None
    if not model.HasField("graph"):
        raise OnnxImportError(f"{path}: holds no graph; it is truncated or not an ONNX model, export it again")
    if not _strings_are_text(model):
        raise OnnxImportError(f"{path}: a name or string in it is not UTF-8 text; it is corrupt, export it again")
    return model


def _strings_are_text(message: Message) -> bool:
    """Whether every string field of a parsed message is UTF-8: protobuf hands a string that is not as bytes,
    which fails wherever it is first used as text."""
    for field, value in message.ListFields():
        items = value if field.is_repeated else (value,)
        if field.type == FieldDescriptor.TYPE_MESSAGE and not all(_strings_are_text(item) for item in items):
            return False
        if field.type == FieldDescriptor.TYPE_STRING and any(isinstance(item, bytes) for item in items):
            return False
    return True


_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _is_text(head: bytes) -> bool:
    """Whether the start of a file is UTF-8 text (binary protobuf has length and tag bytes below 0x20)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a multi-byte character cut at the end of ``head`` is still text
            return False
    return _CONTROL_BYTES.search(head) is None


def _damage(data: bytes) -> str:
    """Why bytes that protobuf cannot parse are no ONNX model, from a walk over their top-level wire format."""
    fields = onnx.ModelProto.DESCRIPTOR.fields_by_number
    pos, end = 0, len(data)
    try:
        while pos < end:
            key, pos = _varint(data, pos)
            field, wire = fields.get(key >> 3), key & 7
            if field is None or wire != (2 if field.type in _LENGTH_DELIMITED else 0):
                return _NOT_ONNX
            value, pos = _varint(data, pos)
            pos += value if wire == 2 else 0
            if pos > end:
                return _truncated(end, f"field '{field.name}'")
    except EOFError:
        return _truncated(end, "the last field")
    except ValueError:
        return _NOT_ONNX
    return "is corrupt (a nested protobuf message does not parse); export the model again"


_LENGTH_DELIMITED = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE)
_NOT_ONNX = "is not an ONNX model (not a ModelProto protobuf); check that this is the .onnx file"


def _truncated(size: int, what: str) -> str:
    return f"is truncated ({size} bytes; {what} runs past the end); copy or download the model again"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The protobuf varint at ``pos`` and the position after it (EOFError at the end, ValueError if overlong)."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise EOFError
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise ValueError("varint longer than 10 bytes")


# --- checks ------------------------------------------------------------------------------------------------------


def _node_name(node: onnx.NodeProto, index: int) -> str:
    """A node's name, or ``<op_type>_<index>`` for unnamed nodes (also its location in the IR)."""
    return node.name or f"{node.op_type}_{index}"


def _refuse_unsupported(model: onnx.ModelProto, where: str) -> None:
    """Raise one error listing every op type the graph dialect lacks, with its nodes and opset."""
    opsets = {o.domain or "": o.version for o in model.opset_import}
    opsets.setdefault("ai.onnx", opsets.get("", 0))
    unsupported: dict[tuple[str, str, bool], list[str]] = {}
    for index, node in enumerate(model.graph.node):
        domain = node.domain or ""
        subgraph = any(a.type in _SUBGRAPH_KINDS for a in node.attribute)
        known = domain in _DEFAULT_DOMAINS and (node.op_type in BY_ONNX_TYPE or node.op_type == "Constant")
        known = known or (domain, node.op_type) in BY_DOMAIN_TYPE  # the contrib ops cimc has (com.microsoft Inverse)
        if subgraph or not known:
            unsupported.setdefault((domain, node.op_type, subgraph), []).append(_node_name(node, index))
    if not unsupported:
        return
    entries = []
    for (domain, op_type, subgraph), names in unsupported.items():
        shown = ", ".join(repr(n) for n in names[:_SHOWN_NODES])
        more = f" and {len(names) - _SHOWN_NODES} more" if len(names) > _SHOWN_NODES else ""
        nodes = f"node {shown}" if len(names) == 1 else f"{len(names)} nodes {shown}{more}"
        where_from = "" if domain in _DEFAULT_DOMAINS else f"domain '{domain}', "
        why = ", has a subgraph" if subgraph else ""
        entries.append(f"{op_type} ({where_from}{nodes}, opset {opsets.get(domain, '?')}{why})")
    count = f"{len(entries)} unsupported op" + ("s" if len(entries) > 1 else "")
    raise OnnxImportError(f"{where}: {count}: {', '.join(entries)}; supported: see `cimc ops`")


def _check_interface(model: onnx.ModelProto, where: str) -> None:
    """The graph has outputs; graph inputs and outputs are tensors of known rank (onnx.checker would not say which
    one is not); every declared dim is a size, -1 or symbolic."""
    if not model.graph.output:
        raise OnnxImportError(f"{where}: the graph has no outputs, so it computes nothing; export it with its outputs")
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.value_info:
        _check_dims(value, "value", where)
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            _check_dims(value, kind, where)
            if not value.type.HasField("tensor_type"):
                raise OnnxImportError(f"{where}: {kind} '{value.name}' is not a tensor; cimc handles tensors only")
            if not value.type.tensor_type.HasField("shape"):
                raise OnnxImportError(
                    f"{where}: {kind} '{value.name}' has unknown rank; give it a shape when exporting (symbolic dims "
                    "such as 'batch' are fine), e.g. with onnx.tools.update_model_dims.update_inputs_outputs_dims"
                )


def _check_dims(value: onnx.ValueInfoProto, kind: str, where: str) -> None:
    """Refuse a declared dim below -1 (-1 is a dynamic dim to some exporters)."""
    if not value.type.HasField("tensor_type"):
        return
    tensor = value.type.tensor_type
    for axis, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value < -1:
            raise OnnxImportError(
                f"{where}: {kind} '{value.name}' has dimension {dim.dim_value} at axis {axis} {_dims_text(value)}; "
                "a dimension is a size of at least 0, or -1 or a name for a dynamic one (a stored dim past int64 "
                "wraps to a negative one)"
            )


def _type_oversize(tp: onnx.TypeProto) -> str | None:
    """Why a value of this ONNX type is too large to create (see ``oversize``), or None if it is not static."""
    tensor = tp.tensor_type
    dims = tensor.shape.dim
    if not tp.HasField("tensor_type") or not all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
        return None
    return oversize([d.dim_value for d in dims], _itemsize_dtype(tensor.elem_type))


def _itemsize_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype of an ONNX element type; one byte for types numpy lacks (strings count by the byte)."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):  # UNDEFINED, or a type numpy cannot hold
        return np.dtype(np.uint8)


def _fix_input_shapes(
    skeleton: onnx.ModelProto,
    weights: Mapping[str, np.ndarray],
    input_shapes: Mapping[str, Sequence[int | None]],
    where: str,
) -> None:
    """Give the skeleton's graph inputs the sizes in ``input_shapes`` (see ``import_onnx``), in place."""
    graph = skeleton.graph
    stored = {t.name for t in graph.initializer} | weights.keys()
    inputs = {v.name: v for v in graph.input if v.name not in stored}
    listed = ", ".join(f"'{name}' {_dims_text(value)}" for name, value in inputs.items())
    for name, sizes in input_shapes.items():
        if name == "" and len(inputs) != 1:
            raise OnnxImportError(
                f"{where}: an input shape without a name needs a single-input model, and this one has "
                f"{len(inputs)} inputs ({listed}); name the input, e.g. --input-shape {next(iter(inputs), 'x')}=..."
            )
        value = next(iter(inputs.values())) if name == "" else inputs.get(name)
        if value is None:
            raise OnnxImportError(f"{where}: the model has no input '{name}' to give a shape; its inputs: {listed}")
        dims = value.type.tensor_type.shape.dim
        if len(sizes) != len(dims):
            raise OnnxImportError(
                f"{where}: input '{value.name}' has rank {len(dims)} {_dims_text(value)}, but its given shape "
                f"{_sizes_text(sizes)} has {len(sizes)} dims; give one size (or ? to keep it dynamic) per dim"
            )
        for axis, (dim, size) in enumerate(zip(dims, sizes)):
            if size is None:
                continue
            if size > INT64_MAX:
                raise OnnxImportError(
                    f"{where}: input '{value.name}': size {size} of dim {axis} in {_sizes_text(sizes)} is beyond "
                    "int64; give a size the chip can hold"
                )
            if size < 1:
                raise OnnxImportError(
                    f"{where}: input '{value.name}': size {size} of dim {axis} in {_sizes_text(sizes)} is not "
                    "positive; give a size of at least 1, or ? to keep the dim dynamic"
                )
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise OnnxImportError(
                    f"{where}: input '{value.name}' has static dim {axis} of size {dim.dim_value} "
                    f"{_dims_text(value)}, but the given shape {_sizes_text(sizes)} makes it {size}; give "
                    f"{dim.dim_value} or ? for that dim"
                )
            dim.dim_value = size  # replaces a symbolic dim_param: the two are a oneof


def _dims_text(value: onnx.ValueInfoProto) -> str:
    """A graph input's dims as ``[?, 3, 224, 224]`` (symbolic and unknown dims as ``?``)."""
    dims = value.type.tensor_type.shape.dim
    return _sizes_text([d.dim_value if d.HasField("dim_value") else None for d in dims])


def _sizes_text(sizes: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if s is None else str(s) for s in sizes) + "]"


def _check(model: onnx.ModelProto, where: str) -> None:
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        message = f"{where}: invalid ONNX model (onnx.checker): {_one_line(exc)}; fix the exporter"
        raise OnnxImportError(message) from None


def _convert_opset(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """The model at ``OPSET`` (the graph dialect's) in the default domain."""
    version = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), OPSET)
    if version == OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, OPSET)
    except Exception as exc:  # the converter raises RuntimeError or its own ConvertError
        reason = _CONVERTER_ASSERTION.sub("", _one_line(exc))
        message = f"{where}: cannot convert from opset {version} to opset {OPSET}: {reason}"
        raise OnnxImportError(f"{message}; export the model at opset {OPSET}") from None


# the converter's messages start with the C++ assertion that failed; what follows it is the reason
_CONVERTER_ASSERTION = re.compile(r"^.*Assertion `.*` failed: ")


def _infer_shapes(model: onnx.ModelProto, where: str, data_prop: bool) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=data_prop)
    except Exception as exc:  # onnx raises InferenceError and friends even outside strict mode
        raise OnnxImportError(f"{where}: ONNX shape inference failed: {_one_line(exc)}; fix the model") from None


def _refuse_oversized(model: onnx.ModelProto, where: str) -> None:
    """Refuse a model whose inputs or inferred types ask for a tensor past the limit, naming the input or the node
    that makes it, before anything (ONNX's data propagation, our constant evaluation) allocates it."""
    for value in model.graph.input:
        problem = _type_oversize(value.type)
        if problem:
            raise OnnxImportError(f"{where}: input '{value.name}' {_dims_text(value)}: {problem}")
    makers = {name: (index, node) for index, node in enumerate(model.graph.node) for name in node.output}
    for value in (*model.graph.value_info, *model.graph.output):
        problem = _type_oversize(value.type)
        if problem and value.name in makers:
            index, node = makers[value.name]
            name = _node_name(node, index)
            raise OnnxImportError(f"{where}: node '{name}' ({node.op_type}): output '{value.name}': {problem}")


def _data_prop_is_safe(model: onnx.ModelProto) -> bool:
    """Whether ONNX's data propagation stays small on this model (see ``DATA_PROP_LENGTH``)."""
    makers = {name: node.op_type for node in model.graph.node for name in node.output}
    for value in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 1:
            continue
        if dims[0].HasField("dim_value"):
            if dims[0].dim_value > DATA_PROP_LENGTH:
                return False
        elif makers.get(value.name) in _SHAPE_DATA_READERS:
            return False
    return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- weights -----------------------------------------------------------------------------------------------------


def _split_weights(
    model: onnx.ModelProto, where: str, base_dir: str | None
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The skeleton (large and external initializers replaced by typed inputs, unnamed nodes named) and the arrays
    of those initializers."""
    graph = model.graph
    if graph.sparse_initializer:
        name = graph.sparse_initializer[0].values.name
        raise OnnxImportError(f"{where}: sparse initializer '{name}' is not supported; store it dense")
    listed = {v.name for v in graph.input}
    weights: dict[str, np.ndarray] = {}
    kept, declared = [], []
    for tensor in graph.initializer:
        _check_initializer_dims(tensor, where)
        external = tensor.data_location == TensorProto.EXTERNAL
        if not external and math.prod(tensor.dims) <= SKELETON_ELEMENTS:
            kept.append(tensor)
            continue
        weights[tensor.name] = _read_initializer(tensor, where, base_dir)
        if tensor.name not in listed:
            declared.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    skeleton_graph = helper.make_graph(
        graph.node, graph.name, [*graph.input, *declared], graph.output, kept, value_info=graph.value_info
    )
    for index, node in enumerate(skeleton_graph.node):  # now, before opset conversion inserts nodes
        node.name = _node_name(node, index)
    skeleton = helper.make_model(
        skeleton_graph, opset_imports=model.opset_import, ir_version=model.ir_version, functions=model.functions
    )
    return skeleton, weights


def _check_initializer_dims(tensor: TensorProto, where: str) -> None:
    """Refuse an initializer with a negative dim, or one too large to read, before reading it."""
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxImportError(
            f"{where}: initializer '{tensor.name}' has dims {dims}: a stored tensor's dims are sizes of at least 0; "
            "export the model again"
        )
    problem = oversize(dims, _itemsize_dtype(tensor.data_type))
    if problem:
        raise OnnxImportError(f"{where}: initializer '{tensor.name}': {problem}")


def _read_initializer(tensor: TensorProto, where: str, base_dir: str | None) -> np.ndarray:
    """An initializer's array (read from its external file when it has one)."""
    if tensor.data_location == TensorProto.EXTERNAL:
        location = onnx.external_data_helper.ExternalDataInfo(tensor).location
        if base_dir is None:
            raise OnnxImportError(
                f"{where}: initializer '{tensor.name}' keeps its data in external file '{location}'; "
                "import the model from its path so the file can be found"
            )
        if not os.path.exists(os.path.join(base_dir, location)):
            raise OnnxImportError(
                f"{where}: initializer '{tensor.name}' keeps its data in '{location}', which is missing from "
                f"{base_dir}; put that file next to the model"
            )
    try:
        return numpy_helper.to_array(tensor, base_dir or "")
    except Exception as exc:  # wrong sizes, unreadable or out-of-folder external files
        raise OnnxImportError(f"{where}: initializer '{tensor.name}' cannot be read: {_one_line(exc)}") from None


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    """The value of a ``Constant`` node, in any of its ``value*`` forms."""
    (attr,) = node.attribute  # the checker allows exactly one
    if attr.name == "value":
        problem = oversize(attr.t.dims, _itemsize_dtype(attr.t.data_type))
        if problem:
            raise ValueError(problem)
        return numpy_helper.to_array(attr.t)
    if attr.name == "value_float":
        return np.array(attr.f, np.float32)
    if attr.name == "value_floats":
        return np.array(attr.floats, np.float32)
    if attr.name == "value_int":
        return np.array(attr.i, np.int64)
    if attr.name == "value_ints":
        return np.array(attr.ints, np.int64)
    if attr.name == "sparse_value":
        raise ValueError("its sparse value is not supported; give it as a dense 'value' tensor")
    raise ValueError(f"its '{attr.name}' form is not supported: cimc has no string tensors")


# --- building ----------------------------------------------------------------------------------------------------


class _Builder:
    """Builds the ``main`` function from a checked, converted, shape-inferred skeleton and its stripped weights."""

    def __init__(self, model: onnx.ModelProto, weights: dict[str, np.ndarray], where: str) -> None:
        self.graph = model.graph
        self.where = where
        self.weights = weights
        self.initializers = {t.name: t for t in self.graph.initializer}
        graph = self.graph
        self.types = {v.name: v.type for v in (*graph.input, *graph.value_info, *graph.output)}
        self.outputs = {v.name for v in graph.output}
        self.consumed = {name for node in graph.node for name in node.input} | self.outputs
        self.readers: dict[str, list[tuple[int, onnx.NodeProto]]] = {}
        for index, node in enumerate(graph.node):
            for name in dict.fromkeys(node.input):
                self.readers.setdefault(name, []).append((index, node))
        self.values: dict[str, Value] = {}
        self.constants: dict[str, np.ndarray] = {}  # the values of constant ops, by ONNX name
        self.func: FuncOp

    def build(self) -> ModuleOp:
        inputs = []
        for value in self.graph.input:
            if value.name not in self.initializers and value.name not in self.weights:
                inputs.append((value.name, self._type(self.types[value.name], f"input '{value.name}'")))
        self.func = FuncOp.create("main", inputs, [])
        for (name, _), arg in zip(inputs, self.func.arguments):
            self.values[name] = arg
        for index, node in enumerate(self.graph.node):
            self._node(node, index)
        outputs = [self._value(v.name, f"graph output '{v.name}'") for v in self.graph.output]
        self.func.body.append(ReturnOp(outputs))
        self.func.set_output_names([v.name for v in self.graph.output])
        self.func.update_function_type()
        module = new_module([self.func])
        try:
            verify(module)
        except VerifyError as exc:
            raise OnnxImportError(f"{self.where}: {exc}") from None  # it names the op and its node
        return module

    def _error(self, node: onnx.NodeProto, index: int, problem: str) -> OnnxImportError:
        return OnnxImportError(f"{self.where}: node '{_node_name(node, index)}' ({node.op_type}): {problem}")

    def _type(self, tp: onnx.TypeProto, what: str) -> TensorType:
        try:
            return tensor_type_from_onnx(tp)
        except ValueError as exc:
            message = f"{self.where}: {what}: {exc}; cimc handles bool, integer and float tensors"
            raise OnnxImportError(message) from None

    def _value(self, name: str, user: str) -> Value:
        """The IR value of an ONNX value name; initializers become constants at their first use."""
        if name in self.values:
            return self.values[name]
        if name in self.weights or name in self.initializers:
            array = self.weights.get(name)
            if array is None:
                array = _read_initializer(self.initializers[name], self.where, None)
            self._check_finite(array, name, f"initializer '{name}'")
            self._constant(array, name, Location(), f"initializer '{name}'")
            return self.values[name]
        raise OnnxImportError(
            f"{self.where}: {user} reads '{name}', which no earlier node, graph input or initializer defines"
        )

    def _check_finite(self, array: np.ndarray, name: str, what: str) -> None:
        """Refuse a constant holding NaN, or infinity where a node computes with it rather than selects or clamps
        with it (``INFINITY_READERS``: PyTorch's masked_fill with -inf is a Where), naming the node that reads it."""
        found = nonfinite(array)
        if found is None:
            return
        readers = self.readers.get(name, [])
        if "NaN" not in found:
            readers = [(i, node) for i, node in readers if node.op_type not in INFINITY_READERS]
            if not readers and name not in self.outputs:
                return
        reader = (
            f" read by node '{_node_name(readers[0][1], readers[0][0])}' ({readers[0][1].op_type})" if readers else ""
        )
        raise OnnxImportError(
            f"{self.where}: {what}{reader} holds {found}; a model's constants must be finite (infinity only as a "
            f"value that {', '.join(sorted(INFINITY_READERS))} select or clamp with): fix the model's weights"
        )

    def _constant(self, array: np.ndarray, name: str, location: Location, what: str) -> None:
        try:
            op = ConstantOp.create(array, name)
        except ValueError as exc:
            raise OnnxImportError(
                f"{self.where}: {what}: {exc}; cast it to a supported type (float, integer or bool)"
            ) from None
        op.location = location
        self.func.body.append(op)
        self.values[name] = op.result
        self.constants[name] = op.value

    def _known(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when known at import time and small enough to steer shape inference: a constant's,
        or the one value of an empty tensor."""
        if name in self.constants:
            value = self.constants[name]
            return value if value.size <= SKELETON_ELEMENTS else None
        ttype = self.values[name].type
        if isinstance(ttype, TensorType) and ttype.is_static and ttype.num_elements == 0:
            return np.empty(ttype.static_shape, ttype.dtype)  # e.g. empty reduction axes given as a graph input
        return None

    def _node(self, node: onnx.NodeProto, index: int) -> None:
        location = Location(_node_name(node, index))
        if node.op_type == "Constant":
            try:
                array = _constant_node_value(node)
            except ValueError as exc:
                raise self._error(node, index, str(exc)) from None
            self._check_finite(array, node.output[0], f"Constant node '{location.name}'")
            self._constant(array, node.output[0], location, f"Constant node '{location.name}'")
            return
        cls = BY_DOMAIN_TYPE.get((node.domain, node.op_type)) or BY_ONNX_TYPE[node.op_type]
        user = f"node '{location.name}' ({node.op_type})"
        attributes = {}
        for attr in node.attribute:
            if attr.name not in cls.definition.attributes:
                problem = f"attribute '{attr.name}' is not supported by '{cls.name}'; export the model without it"
                raise self._error(node, index, problem)
            attributes[attr.name] = attribute_from_onnx(attr, f"{location.name}.{attr.name}")
        groups = self._operand_groups(cls, node, user)
        outputs = _kept_outputs(cls, node, self.consumed)
        pending = [Type()] * len(outputs)  # placeholders until the result types are known, below
        try:  # result types come once ``build`` has laid out the operand segments that inferring them may need
            op = cls.build(*groups, attributes=attributes, result_types=pending, location=location)
        except (VerifyError, ValueError) as exc:
            raise self._error(node, index, str(exc)) from None
        for output, result, ttype in zip(outputs, op.results, self._result_types(op, node, index, outputs)):
            if isinstance(ttype, TensorType) and ttype.is_static:
                too_large = oversize(ttype.static_shape, ttype.dtype)
                if too_large:
                    raise self._error(node, index, f"output '{output}': {too_large}")
            result.type = ttype
        self.func.body.append(op)
        for name, result in zip(node.output, op.results):
            if name:
                self.values[name] = result
        self._propagate_constants(op, node)

    def _propagate_constants(self, op: GraphOp, node: onnx.NodeProto) -> None:
        """Record the values of a node all of whose inputs are known small constants, evaluated with the op's
        reference implementation, so that later nodes' types can be inferred from them: exporters compute Slice
        bounds and Reshape shapes from constants through ops ONNX's data propagation does not follow (Mod, Add).
        The op itself stays in the IR; folding it is ``fold-constants``'s job."""
        inputs = [self._known(name) for name in node.input if name]
        if any(array is None for array in inputs) or not all(_small(r.type) for r in op.results):
            return  # only small results are kept, and only a static type says how large one is before computing it
        try:
            with np.errstate(all="ignore"):
                results = op.evaluate(inputs)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a value we cannot compute only means less precise types
            return
        for name, array in zip(node.output, results):
            if name and np.asarray(array).size <= SKELETON_ELEMENTS:
                self.constants[name] = np.asarray(array)

    def _operand_groups(self, cls: type[GraphOp], node: onnx.NodeProto, user: str) -> list[Value | list[Value] | None]:
        """One entry per declared operand: a value, None for an absent optional (``""``), a list for variadics."""
        names = list(node.input)
        groups: list[Value | list[Value] | None] = []
        position = 0
        for d in cls.definition.operands:
            if d.kind == "variadic":  # ONNX puts variadic inputs last
                groups.append([self._value(n, user) for n in names[position:]])
                position = len(names)
                continue
            name = names[position] if position < len(names) else ""
            groups.append(self._value(name, user) if name else None)
            position += 1
        return groups

    def _result_types(self, op: GraphOp, node: onnx.NodeProto, index: int, outputs: list[str]) -> list[Type]:
        """Shape inference's types where it gave them static (or the operands are dynamic anyway), else those
        inferred for this node alone with the constant operands' values, whichever is more static."""
        where = f"node '{_node_name(node, index)}'"
        known = [self._graph_type(name, f"{where} output '{name}'") for name in outputs]
        operand_types = [v.type for v in op.operands]
        operands_static = all(isinstance(t, TensorType) and t.is_static for t in operand_types)
        if all(t is not None and (t.is_static or not operands_static) for t in known):
            return known  # type: ignore[return-value]
        known_values = {i: self._known(name) for i, name in enumerate(n for n in node.input if n)}
        constants = {i: array for i, array in known_values.items() if array is not None}
        try:
            inferred: list[Type] = infer_types(type(op), operand_types, op.attributes, constants)
            failure = ""
        except (VerifyError, ValueError) as exc:
            inferred, failure = [], f" ({exc})"
        types = []
        for i, (name, graph_type) in enumerate(zip(outputs, known)):
            best = max((graph_type, inferred[i] if i < len(inferred) else None), key=_static_dims)
            if best is None:
                problem = f"cannot infer the type of output '{name}'{failure}; give the model static input shapes"
                raise self._error(node, index, problem)
            types.append(best)
        return types

    def _graph_type(self, name: str, what: str) -> TensorType | None:
        """The type ONNX shape inference gave the value ``name``; None when it found no rank."""
        tp = self.types.get(name) if name else None
        if tp is None or not tp.tensor_type.HasField("shape"):
            return None
        return self._type(tp, what)


def _kept_outputs(cls: type[GraphOp], node: onnx.NodeProto, consumed: set[str]) -> list[str]:
    """The node's outputs the op gets results for: trailing optional ones nothing reads are dropped (a Dropout's
    mask, a MaxPool's indices); variadic outputs are all kept, their count being part of the op's meaning (Split)."""
    defs = cls.definition.results
    outputs = list(node.output)
    if any(d.kind == "variadic" for d in defs):
        return outputs
    used = [i for i, name in enumerate(outputs) if name and name in consumed]
    required = sum(d.kind == "single" for d in defs)
    return outputs[: max(required, used[-1] + 1 if used else 0)]


def _small(ttype: Type) -> bool:
    """Whether a result type is static and no larger than the constants recorded for shape inference."""
    return isinstance(ttype, TensorType) and ttype.is_static and ttype.num_elements <= SKELETON_ELEMENTS


def _static_dims(ttype: Type | None) -> int:
    """How much of a type is known: -1 for none, else 1 + its static dimension count."""
    if not isinstance(ttype, TensorType):
        return -1
    return 1 + sum(d is not None for d in ttype.shape)
