"""Typed, checked options: what a value may be (``Rule``) and the one declaration of an option (``Option``).

An option is declared once, as an ``Option``: its default (which gives its type), the values it admits and what it
means. Every dataclass that carries it (a pass, the compiler's ``CrossbarOptions``) makes its field from that
declaration (``cell_bits: int = CELL_BITS.field()``), and ``check_options`` checks such fields against their rules,
so the bounds, the default and the error message are the same wherever the option is given. The chip description
checks its fields with the same ``Rule``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T", int, float, str, bool)


@dataclass(frozen=True)
class Rule:
    """What a value accepts: bounds (inclusive ``low``/``high``, exclusive ``above``) or a set of choices."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()

    def holds(self, value: Any) -> bool:
        """Whether ``value`` satisfies the rule."""
        if self.choices:
            return value in self.choices
        return (
            (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
            and (self.above is None or value > self.above)
        )

    def describe(self, kind: str) -> str:
        """``an integer from 1 to 8``, ``a number > 0``, ``one of 'a', 'b'`` (``kind``: the value's type name)."""
        if self.choices:
            return "one of " + ", ".join(f"'{c}'" for c in self.choices)
        noun = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}[kind]
        if self.low is not None and self.high is not None:
            return f"{noun} from {_number(self.low)} to {_number(self.high)}"
        if self.low is not None:
            return f"{noun} >= {_number(self.low)}"
        if self.above is not None:
            return f"{noun} > {_number(self.above)}"
        return noun


def _number(value: float) -> str:
    """A bound as written: integers in full, whole floats as integers up to a million, other floats as ``1e+12``."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e6):
        return str(int(value))
    return f"{value:g}"


class OptionError(ValueError):
    """A value an option does not admit; the message is one line: ``where`` the value was given (``pass 'tile'
    option 'array-rows'``), what the option admits and the value.

    ``option`` is the field's name and ``expected`` what its rule admits, so a caller that knows where the value
    came from (a command-line flag) can name that instead."""

    def __init__(self, where: str, option: str, value: object, expected: str) -> None:
        self.option, self.value, self.expected = option, value, expected
        super().__init__(f"{where} must be {expected}, got {show(value)}")


def option_text(value: object) -> str:
    """An option's value as a pipeline's text writes it: booleans ``true``/``false``, strings as bare words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def show(value: object) -> str:
    """An option's value in a message: its text, quoted when it is a string."""
    return f"'{value}'" if isinstance(value, str) else option_text(value)


@dataclass(frozen=True)
class Option(Generic[T]):
    """The declaration of one option: its ``default`` (whose type is the option's), the ``rule`` its values obey and
    ``doc``, what it means (the help of a flag that sets it)."""

    default: T
    doc: str
    rule: Rule = Rule()

    @property
    def kind(self) -> str:
        """The option's type name: ``int``, ``float``, ``str`` or ``bool``."""
        return type(self.default).__name__

    def field(self) -> T:
        """A dataclass field carrying this option: its default, and the declaration for ``check_options``."""
        return dataclasses.field(default=self.default, metadata={"option": self})

    def or_zero(self, meaning: str) -> Option[T]:
        """The same option, defaulting to 0 and admitting it, 0 meaning ``meaning`` (e.g. the module's chip's)."""
        return Option(type(self.default)(0), f"{self.doc}; 0: {meaning}", dataclasses.replace(self.rule, low=0))


def option_of(field: dataclasses.Field) -> Option | None:
    """The ``Option`` a dataclass field was made from, None for a plain field."""
    return field.metadata.get("option")


def check_options(values: object, where: Callable[[str], str]) -> None:
    """Raise ``OptionError`` for the first field of the dataclass ``values`` that breaks its option's rule;
    ``where`` names a field as its user gives it (``pass 'tile' option 'array-rows'``)."""
    for field in dataclasses.fields(values):  # type: ignore[arg-type]
        declared = option_of(field)
        value = getattr(values, field.name)
        if declared is not None and not (_is_a(value, declared.kind) and declared.rule.holds(value)):
            raise OptionError(where(field.name), field.name, value, declared.rule.describe(declared.kind))


def _is_a(value: object, kind: str) -> bool:
    """Whether ``value`` has the type ``kind`` names (an int is a float; a bool is no number)."""
    if isinstance(value, bool):
        return kind == "bool"
    types: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str, "bool": bool}
    return isinstance(value, types[kind])
