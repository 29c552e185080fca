"""Passes, their registry, pipeline strings and the pass manager.

A pass is a frozen dataclass with a kebab-case ``name``; its fields are its options, each made from its one
declaration (``cimc.ir.options.Option``) and checked against it when the pass is made. The compiler builds pass
objects; a pipeline also has a textual form, ``"canonicalize,tile{array-rows=64}"`` (``cimc opt``'s interface,
and the name of each pass in dumps and timings): ``str(p)`` prints it and ``parse_pipeline`` reads it back into
equal pass objects. The manager runs passes in order, and can verify after each pass (``--verify-each``), print the
IR after each (``--print-ir-after-all``) and time each (``--timing``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TextIO

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.options import OptionError, check_options, option_text
from cimc.ir.verifier import verify


class PipelineError(ValueError):
    """A pipeline string names an unknown pass or option, or gives an option a bad value."""


@dataclass(frozen=True)
class Pass(ABC):
    """Base of every pass: subclasses set ``name`` and implement ``run``; dataclass fields are options, checked
    against their declarations when the pass is made (``PipelineError`` naming the pass and the option)."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        try:
            check_options(self, lambda field: f"pass '{self.name}' option '{field.replace('_', '-')}'")
        except OptionError as exc:
            raise PipelineError(str(exc)) from None

    @abstractmethod
    def run(self, module: ModuleOp) -> None:
        """Transform ``module`` in place."""

    def __str__(self) -> str:
        options = ",".join(
            f"{f.name.replace('_', '-')}={option_text(getattr(self, f.name))}" for f in dataclasses.fields(self)
        )
        return f"{self.name}{{{options}}}" if options else self.name


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass usable by name in pipeline strings."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", cls.name):
        raise ValueError(f"pass name '{cls.name}' must be kebab-case")
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass '{cls.name}' registered twice")
    PASSES[cls.name] = cls
    return cls


def _convert(text: str, field_type: object, where: str) -> object:
    kind = field_type if isinstance(field_type, str) else getattr(field_type, "__name__", str(field_type))
    try:
        if kind == "bool":
            if text not in ("true", "false", "1", "0"):
                raise ValueError
            return text in ("true", "1")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        return text
    except ValueError:
        raise PipelineError(f"{where}: '{text}' is not a valid {kind}") from None


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0 or depth > 1:
            raise PipelineError(f"unbalanced braces in pipeline '{text}'")
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise PipelineError(f"unbalanced braces in pipeline '{text}'")
    return [*items, text[start:]]


def parse_pipeline(text: str) -> list[Pass]:
    """Passes from a pipeline string such as ``"canonicalize,dce"`` or ``"tile{array-rows=64}"``; options are
    separated by spaces (as in MLIR) or commas. Passes are those registered (``register_pass``): importing
    ``cimc.passes`` registers cimc's, as the compiler does."""
    passes: list[Pass] = []
    if not text.strip():
        return passes
    for item in _split_top_level(text):
        m = re.fullmatch(r"\s*([a-z][a-z0-9-]*)\s*(?:\{([^{}]*)\})?\s*", item)
        if m is None:
            raise PipelineError(
                f"cannot read '{item.strip()}' in pipeline '{text}' (expected name or name{{opt=value}})"
            )
        name = m.group(1)
        cls = PASSES.get(name)
        if cls is None:
            raise PipelineError(f"unknown pass '{name}' (known: {', '.join(sorted(PASSES))})")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        options: dict[str, object] = {}
        for option in filter(None, re.split(r"[\s,]+", m.group(2) or "")):
            key, sep, value = option.partition("=")
            attr = key.strip().replace("-", "_")
            if not sep or attr not in fields:
                known = ", ".join(f.replace("_", "-") for f in fields) or "none"
                raise PipelineError(f"pass '{name}' has no option '{key.strip()}' (options: {known})")
            options[attr] = _convert(value, fields[attr].type, f"pass '{name}' option '{key.strip()}'")
        passes.append(cls(**options))
    return passes


@dataclass
class PassTiming:
    """Wall time of one pass run."""

    name: str
    seconds: float


class PassManager:
    """Runs passes in order, with optional verification, IR dumps and timing after each."""

    def __init__(
        self,
        passes: Sequence[Pass] | str,
        verify_each: bool = False,
        print_ir_after_all: TextIO | None = None,
        printer: Callable[[ModuleOp], str] | None = None,
    ) -> None:
        self.passes = parse_pipeline(passes) if isinstance(passes, str) else list(passes)
        self.verify_each = verify_each
        self.dump = print_ir_after_all
        self.printer = printer or str
        self.timings: list[PassTiming] = []

    def run(self, module: ModuleOp) -> ModuleOp:
        """Run every pass on ``module`` in place and return it."""
        for p in self.passes:
            start = time.perf_counter()
            p.run(module)
            self.timings.append(PassTiming(str(p), time.perf_counter() - start))
            if self.verify_each:
                verify(module)
            if self.dump is not None:
                write_dump(self.dump, str(p), self.printer(module))
        return module


def timing_table(timings: Sequence[PassTiming]) -> str:
    """A table of per-pass wall time, as ``--timing`` prints it."""
    total = sum(t.seconds for t in timings)
    lines = ["===- Pass execution timing report -===", f"  Total: {total:.4f} s", "   Time (s)   Share  Pass"]
    for t in timings:
        lines.append(f"  {t.seconds:9.4f}  {100 * t.seconds / max(total, 1e-12):5.1f}%  {t.name}")
    return "\n".join(lines)


def write_dump(stream: TextIO, after: str, text: str) -> None:
    """One ``--print-ir-after-all`` entry, headed as mlir-opt heads it."""
    stream.write(f"// -----// IR Dump After {after} //----- //\n{text}\n")
