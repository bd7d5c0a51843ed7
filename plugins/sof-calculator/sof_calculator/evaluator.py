"""The calculator's evaluator: arithmetic in Python syntax, parsed by ``ast`` and walked over
a whitelist of our own. Nothing is ever passed to ``eval``, ``exec`` or ``compile``.

Why not simpleeval or asteval (docs/plugins/calculator.md says more): simpleeval 1.0's power
guard checks each operand against 4,000,000 separately, so ``4000000**4000000`` passes it
and runs for minutes; its multiplication and exact-size checks cover strings only, and it
allows attribute access (``(1).real``), strings, comparisons and conditionals by default.
asteval is a whole Python interpreter (loops, function definitions), far more than
arithmetic needs. Configuring either down to "numbers, operators, a few functions, with a
size check on every result" replaces all of its evaluation code, so the whitelist is kept
here, small enough to read in one sitting.

Numbers are exact while Python can keep them exact: literals become ``int`` or ``Fraction``
(``0.1 + 0.2`` is exactly ``3/10``), ``+ - * / // %`` and integer powers stay exact, roots of
perfect powers are exact (``sqrt(144)`` is ``12``, ``8 ** (1/3)`` is ``2``). Anything else
(``pi``, ``sin``, irrational roots) is a ``float``. Every intermediate result is checked:
an exact number may have at most ``MAX_RESULT_BITS`` bits, and a power is refused *before*
it is computed when its size estimate is over that, so ``9**9**9`` costs microseconds.
"""

from __future__ import annotations

import ast
import decimal
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

from sof_calculator.errors import (
    CalculationError,
    CalculationLimitError,
    CalculationMathError,
    CalculationNotAllowed,
    CalculationSyntaxError,
)

Exact = Union[int, Fraction]  # noqa: UP007 - a runtime alias (Python 3.10)
Number = Union[int, Fraction, float]  # noqa: UP007

#: Longest expression evaluated (characters, after the extractor rewrote words).
MAX_EXPRESSION_CHARS = 1_000
#: Deepest parentheses nesting.
MAX_NESTING = 30
#: Most operations nested in one another (``- - - 1`` is three; a sum of n terms is n - 1,
#: since ``a + b + c`` is ``(a + b) + c``). Keeps the evaluator's recursion shallow.
MAX_DEPTH = 100
#: Largest exact number: an integer, or a fraction's numerator or denominator, of at most
#: this many bits (about 3,010 decimal digits). Larger non-integers fall back to ``float``;
#: larger integers are refused.
MAX_RESULT_BITS = 10_000
#: Largest ``n`` for ``factorial(n)`` (``1000!`` has 2,568 digits).
MAX_FACTORIAL = 1_000
#: Largest ``|ndigits|`` for ``round(x, ndigits)``.
MAX_ROUND_DIGITS = 100
#: Largest ``|exponent|`` in a number literal such as ``1e300``.
MAX_LITERAL_EXPONENT = 4_000
#: Highest root tried exactly (``x ** (1/q)`` with ``q`` up to this).
MAX_ROOT_DEGREE = 64
#: Significant digits of the readable number.
READABLE_DIGITS = 12
#: Operation steps recorded; the rest are counted.
MAX_STEPS = 25

_LOG10_2 = math.log10(2)
_LN_2 = math.log(2)
_EPSILON = 2.0**-52
#: Largest argument whose trigonometric result near zero is taken as rounding error.
_SNAP_LIMIT = 1e6


def max_result_digits() -> int:
    """Decimal digits of the largest exact integer kept (for messages and docs)."""
    return int(MAX_RESULT_BITS * _LOG10_2) + 1


# --- the result --------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One evaluated expression: the exact value where there is one, and a readable one."""

    expression: str
    value: Number
    steps: tuple[str, ...] = field(default=())

    @property
    def exact(self) -> bool:
        """True when ``value`` is an ``int`` or ``Fraction`` (no rounding happened)."""
        return not isinstance(self.value, float)

    @property
    def readable(self) -> int | float:
        """``value`` as a plain number: an ``int`` when it is a whole number, else a ``float``
        rounded to ``READABLE_DIGITS`` significant digits."""
        return readable_number(self.value)

    @property
    def text(self) -> str:
        """``readable`` as text."""
        return str(self.readable)

    @property
    def exact_text(self) -> str | None:
        """The exact non-integer value (``"1/3"``), or None when there is none to show."""
        value = self.value
        if isinstance(value, Fraction) and value.denominator != 1:
            text = f"{value.numerator}/{value.denominator}"
            return text if len(text) <= 60 else None
        return None


def readable_number(value: Number) -> int | float:
    """``value`` as an ``int`` (whole numbers) or a ``float`` of ``READABLE_DIGITS`` digits."""
    if isinstance(value, int):
        return value
    if isinstance(value, Fraction):
        try:
            number = float(value)
        except OverflowError:  # beyond float range: the fraction part is noise by then
            return round(value)
    else:
        number = value
    tidy = float(f"{number:.{READABLE_DIGITS}g}")
    if tidy.is_integer() and abs(tidy) < 1e15:
        return int(tidy)
    return tidy


# --- functions and constants -------------------------------------------------------------


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Number]
    min_args: int
    max_args: int
    usage: str


CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _whole(x: Number, what: str) -> int:
    """``x`` as an int, for arguments that must be whole numbers."""
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    if isinstance(x, float) and x.is_integer():
        return int(x)
    raise CalculationMathError(f"{what} needs a whole number, got {_show(x)}")


def _bits(x: Exact) -> int:
    if isinstance(x, int):
        return x.bit_length()
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def _log2_abs(x: Number) -> float:
    """log2|x| for x != 0, also for exact numbers far beyond float range."""
    if isinstance(x, float):
        return math.log2(abs(x))
    if isinstance(x, int):
        return math.log2(abs(x))
    return math.log2(abs(x.numerator)) - math.log2(x.denominator)


def _too_large(log10_size: float, what: str = "the result") -> CalculationLimitError:
    digits = (f"about {int(log10_size) + 1:,}" if math.isfinite(log10_size)
              else "astronomically many")
    return CalculationLimitError(
        f"{what} would have {digits} digits; the calculator keeps exact numbers below "
        f"2**{MAX_RESULT_BITS} ({max_result_digits():,} digits) and floating-point numbers "
        "below 1.8e308"
    )


def fit(x: object) -> Number:
    """``x`` checked against the size limits, whole fractions made ints, huge non-integer
    fractions made floats. Every operation's result passes through here."""
    if isinstance(x, bool):  # never produced by the evaluator; refuse rather than widen
        raise CalculationNotAllowed("True and False are not numbers")
    if isinstance(x, Fraction) and x.denominator == 1:
        x = x.numerator
    if isinstance(x, int):
        if x.bit_length() > MAX_RESULT_BITS:
            raise _too_large(math.log10(abs(x)))
        return x
    if isinstance(x, Fraction):
        if _bits(x) <= MAX_RESULT_BITS:
            return x
        try:
            return fit(float(x))
        except OverflowError:
            raise _too_large(_log2_abs(x) * _LOG10_2) from None
    if isinstance(x, float):
        if math.isnan(x):
            raise CalculationMathError("the result is not a number (NaN)")
        if math.isinf(x):
            raise CalculationLimitError(
                "the result is too large for a floating-point number (over 1.8e308)"
            )
        return x
    if isinstance(x, complex):
        raise CalculationMathError("the result is not a real number")
    raise CalculationSyntaxError(f"the result {type(x).__name__} is not a number")


def _float(x: Number) -> float:
    try:
        return float(x)
    except OverflowError:
        raise _too_large(_log2_abs(x) * _LOG10_2, "the floating-point value") from None


def _iroot(n: int, q: int) -> int:
    """floor(n ** (1/q)) for n >= 0, by Newton's method on integers."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // q)  # a power of two at or above the root
    while True:
        y = ((q - 1) * x + n // x ** (q - 1)) // q
        if y >= x:
            return x
        x = y


def _exact_root(x: Exact, q: int) -> Number | None:
    """The exact q-th root of ``x`` when it is rational, else None."""
    if q > MAX_ROOT_DEGREE:
        return None
    negative = x < 0
    if negative and q % 2 == 0:
        raise CalculationMathError(
            f"a negative number has no real root of even degree {q} "
            f"({_operand(x)} ** (1/{q}))"
        )
    value = Fraction(-x if negative else x)
    num, den = value.numerator, value.denominator
    root_num, root_den = _iroot(num, q), _iroot(den, q)
    if root_num**q != num or root_den**q != den:
        return None
    root = Fraction(root_num, root_den)
    return fit(-root if negative else root)


def _ln_abs(x: Number) -> float:
    """ln|x| for x != 0, to a float's precision also where ``float(x)`` would lose it: an
    exact number close to 1 or -1 (``1 + 1/10**17``) goes through ``log1p`` of its exact
    distance from 1, a huge one through its numerator's and denominator's logarithms."""
    if isinstance(x, float):
        return math.log(abs(x))
    value: Exact = -x if x < 0 else x
    distance = value - 1
    if -0.5 < distance < 0.5:
        return math.log1p(float(distance))
    return _log2_abs(value) * _LN_2


def _pow_float(a: Number, b: float, odd: bool | None = None) -> Number:
    """a ** b in floating point, with its size checked before it is computed. ``odd`` is
    the parity of the exponent where ``b`` is its rounded value (a huge whole exponent,
    or the numerator of ``p/q`` with ``q`` odd): it gives the sign for a negative ``a``."""
    if a == 0:
        if b < 0:
            raise CalculationMathError("division by zero (0 to a negative power)")
        return 0.0 if b > 0 else 1.0
    negative = a < 0
    if negative and odd is None:
        if not b.is_integer():
            raise CalculationMathError(
                "a negative number to a fractional power has no real value "
                f"({_operand(a)} ** {_operand(b)})"
            )
        odd = b % 2 == 1
    ln_base = _ln_abs(a)
    magnitude = b * ln_base / _LN_2  # log2 of the result's size
    if magnitude > 1023.9:
        raise _too_large(magnitude * _LOG10_2)
    if magnitude < -1080:
        return 0.0
    base: Number = -a if negative else a
    try:
        rounded = float(base)
    except OverflowError:
        rounded = math.inf
    # An exact base a float cannot hold: exp(b * ln|a|) with ln|a| from the exact value, as
    # float(a) ** b would carry a's rounding error times b ((1 + 1/10**17) ** 10**17 would
    # be 1, not e).
    result = rounded**b if rounded == base else math.exp(b * ln_base)
    return fit(-result if negative and odd else result)


def power(a: Number, b: Number) -> Number:
    """a ** b: exact for exact bases and whole exponents, and for exact roots; refused before
    it is computed when the result would be over the size limits. A negative base to a
    fraction ``p/q`` with ``q`` odd is the real root, as ``cbrt`` gives: ``(-2) ** (1/3)``
    is ``-cbrt(2)``, ``(-8) ** (2/3)`` is 4."""
    if isinstance(b, float):
        return _pow_float(a, b)
    if isinstance(b, Fraction) and b.denominator != 1:
        if not isinstance(a, float):
            root = _exact_root(a, b.denominator)
            if root is not None:
                return power(root, b.numerator)
        if a < 0 and b.denominator % 2 == 0:
            raise CalculationMathError(
                f"a negative number has no real root of even degree {b.denominator:,} "
                f"({_operand(a)} ** {_operand(b)})"
            )
        return _pow_float(a, _float(b), odd=a < 0 and b.numerator % 2 == 1)
    n = int(b)
    if not isinstance(a, float):
        if a == 0:
            if n < 0:
                raise CalculationMathError("division by zero (0 to a negative power)")
            return 1 if n == 0 else 0
        if n == 0 or a == 1:
            return 1
        if a == -1:
            return -1 if n % 2 else 1
        # Exact and cheap (at most twice the size limit); fit() refuses what is too large.
        if _bits(a) * abs(n) <= 2 * MAX_RESULT_BITS:
            return fit(Fraction(a) ** n)
    try:
        exponent = float(n)
    except OverflowError:  # |n| > 1.8e308: the answer is 0, +-1, or too large
        if a == 0 and n < 0:
            raise CalculationMathError("division by zero (0 to a negative power)") from None
        if a in (1, -1):
            return 1.0 if a > 0 or n % 2 == 0 else -1.0
        if (a > 1 or a < -1) == (n > 0):
            raise _too_large(math.inf) from None
        return 0.0
    return _pow_float(a, exponent, odd=n % 2 == 1)


def combine(op: str, a: Number, b: Number) -> Number:
    """``a op b`` for a binary operator, size-checked."""
    if op == "**":
        return power(a, b)
    if isinstance(a, float) != isinstance(b, float):
        # Python would convert the exact one itself, failing obscurely when it is huge.
        a, b = _float(a), _float(b)
    if op in ("/", "//", "%"):
        return _divide(a, b, op)
    if op == "+":
        return fit(a + b)
    if op == "-":
        return fit(a - b)
    return fit(a * b)


def _divide(a: Number, b: Number, op: str) -> Number:
    if b == 0:
        raise CalculationMathError(f"division by zero ({_show(a)} {op} 0)")
    if op == "/":
        if isinstance(a, float) or isinstance(b, float):
            return fit(a / b)
        return fit(Fraction(a) / b)
    if op == "//":
        return fit(a // b)
    return fit(a % b)


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise CalculationMathError(
            f"the square root of a negative number is not a real number (sqrt({_show(x)}))"
        )
    if not isinstance(x, float):
        root = _exact_root(x, 2)
        if root is not None:
            return root
    try:
        return fit(math.sqrt(x))
    except OverflowError:  # beyond float range: half the logarithm
        return _pow_float(x, 0.5)


def _cbrt(x: Number) -> Number:
    if not isinstance(x, float):
        root = _exact_root(x, 3)
        if root is not None:
            return root
    result = _pow_float(-x if x < 0 else x, 1 / 3)
    return -result if x < 0 else result


def _log_in(x: Number, base: Number) -> float:
    """log of x in ``base`` (floating point), for exact x far beyond float range too."""
    if x <= 0:
        raise CalculationMathError(
            f"the logarithm is defined for positive numbers only (got {_show(x)})"
        )
    fn = math.log10 if base == 10 else math.log2 if base == 2 else math.log
    value = fn(x.numerator) - fn(x.denominator) if isinstance(x, Fraction) else fn(x)
    if fn is math.log and base != math.e:
        value /= _log_in(base, math.e)
    return value


def _log_base(x: Number, base: Number) -> Number:
    if base <= 0 or base == 1:
        raise CalculationMathError(
            f"a logarithm's base must be positive and not 1 (got {_show(base)})"
        )
    value = _log_in(x, base)
    # log(1000) is exactly 3, log(1/8, 2) exactly -3: check the nearest whole number.
    if not isinstance(x, float) and isinstance(base, int) and math.isfinite(value):
        k = round(value)
        if abs(k) * base.bit_length() <= MAX_RESULT_BITS and power(base, k) == x:
            return k
    return fit(value)


def _log(x: Number, base: Number = 10) -> Number:
    return _log_base(x, base)


def _ln(x: Number) -> Number:
    return fit(_log_in(x, math.e))


def _exp(x: Number) -> Number:
    if x > 709.78:
        raise _too_large(float(min(x, 10**300)) * math.log10(math.e))
    if x < -745.2:
        return 0.0
    return fit(math.exp(float(x)))


def _trig(name: str, fn: Callable[[float], float]) -> Callable[[Number], Number]:
    def apply(x: Number) -> Number:
        value = _float(x)
        try:
            result = fn(value)
        except ValueError:
            raise CalculationMathError(
                f"{name}({_show(x)}) is outside the function's domain"
                + (" (it takes values from -1 to 1)" if name in ("asin", "acos") else "")
            ) from None
        # sin(pi) is 1.2e-16 in floating point: within rounding error of zero, say zero.
        # Only for moderate arguments: a huge float (1e300) is no multiple of pi, and its
        # sine, computed exactly by the C library, is far from zero.
        if name in ("sin", "cos", "tan") and 1e-6 <= abs(value) <= _SNAP_LIMIT \
                and abs(result) < 4 * _EPSILON * max(1.0, abs(value)):
            return 0.0
        return fit(result)

    return apply


def _round(x: Number, ndigits: Number | None = None) -> Number:
    """Round half away from zero (2.5 -> 3, as on paper; Python's round() gives 2)."""
    digits = 0 if ndigits is None else _whole(ndigits, "round()'s number of digits")
    if abs(digits) > MAX_ROUND_DIGITS:
        raise CalculationLimitError(
            f"round() keeps at most {MAX_ROUND_DIGITS} digits (got {digits})"
        )
    value = Fraction(repr(x)) if isinstance(x, float) else Fraction(x)
    scale = Fraction(10) ** digits
    scaled = abs(value) * scale
    rounded = math.floor(scaled + Fraction(1, 2))
    result = Fraction(rounded if value >= 0 else -rounded) / scale
    if ndigits is None:
        return fit(int(result))
    return fit(float(result)) if isinstance(x, float) else fit(result)


def _factorial(x: Number) -> Number:
    n = _whole(x, "factorial")
    if n < 0:
        raise CalculationMathError(f"factorial is defined for n >= 0 only (got {n})")
    if n > MAX_FACTORIAL:
        size = math.lgamma(n + 1) / math.log(10) if n < 10**300 else math.inf
        raise CalculationLimitError(
            f"{_show(n)}! would have "
            + (f"about {int(size):,}" if math.isfinite(size) else "astronomically many")
            + f" digits; the calculator computes factorials up to {MAX_FACTORIAL}!"
        )
    return math.factorial(n)


def _percent(x: Number) -> Number:
    return fit(x / 100 if isinstance(x, float) else Fraction(x) / 100)


def _floor(x: Number) -> Number:
    return fit(math.floor(x))


def _ceil(x: Number) -> Number:
    return fit(math.ceil(x))


def _abs(x: Number) -> Number:
    return -x if x < 0 else x


def _min(*xs: Number) -> Number:
    return min(xs)


def _max(*xs: Number) -> Number:
    return max(xs)


def _degrees(x: Number) -> Number:
    return fit(math.degrees(_float(x)))


def _radians(x: Number) -> Number:
    return fit(math.radians(_float(x)))


FUNCTIONS: dict[str, _Function] = {
    "sqrt": _Function(_sqrt, 1, 1, "sqrt(x)"),
    "cbrt": _Function(_cbrt, 1, 1, "cbrt(x)"),
    "log": _Function(_log, 1, 2, "log(x) (base 10) or log(x, base)"),
    "log10": _Function(lambda x: _log_base(x, 10), 1, 1, "log10(x)"),
    "log2": _Function(lambda x: _log_base(x, 2), 1, 1, "log2(x)"),
    "ln": _Function(_ln, 1, 1, "ln(x) (natural logarithm)"),
    "exp": _Function(_exp, 1, 1, "exp(x)"),
    "sin": _Function(_trig("sin", math.sin), 1, 1, "sin(x) (radians)"),
    "cos": _Function(_trig("cos", math.cos), 1, 1, "cos(x) (radians)"),
    "tan": _Function(_trig("tan", math.tan), 1, 1, "tan(x) (radians)"),
    "asin": _Function(_trig("asin", math.asin), 1, 1, "asin(x)"),
    "acos": _Function(_trig("acos", math.acos), 1, 1, "acos(x)"),
    "atan": _Function(_trig("atan", math.atan), 1, 1, "atan(x)"),
    "degrees": _Function(_degrees, 1, 1, "degrees(x)"),
    "radians": _Function(_radians, 1, 1, "radians(x)"),
    "round": _Function(_round, 1, 2, "round(x) or round(x, digits)"),
    "min": _Function(_min, 1, 100, "min(a, b, ...)"),
    "max": _Function(_max, 1, 100, "max(a, b, ...)"),
    "abs": _Function(_abs, 1, 1, "abs(x)"),
    "floor": _Function(_floor, 1, 1, "floor(x)"),
    "ceil": _Function(_ceil, 1, 1, "ceil(x)"),
    "factorial": _Function(_factorial, 1, 1, "factorial(n)"),
    "percent": _Function(_percent, 1, 1, "percent(x) (x / 100)"),
}

_BINARY: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}
_REFUSED_BINARY: dict[type[ast.operator], str] = {
    ast.BitXor: "'^' is bitwise xor in Python syntax; write ** for powers",
    ast.BitOr: "'|' (bitwise or) is not arithmetic",
    ast.BitAnd: "'&' (bitwise and) is not arithmetic",
    ast.LShift: "'<<' (bit shift) is not supported",
    ast.RShift: "'>>' (bit shift) is not supported",
    ast.MatMult: "'@' (matrix multiplication) is not supported",
}
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access ('.{attr}') is not allowed",
    ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Subscript: "indexing and slicing are not allowed",
    ast.Compare: "comparisons are not supported: the calculator computes numbers",
    ast.BoolOp: "'and' / 'or' are not supported: the calculator computes numbers",
    ast.IfExp: "conditional expressions are not supported",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.Starred: "argument unpacking ('*') is not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
    ast.List: "lists are not supported; pass numbers separately, e.g. max(1, 2, 3)",
    ast.Tuple: "tuples are not supported; pass numbers separately, e.g. max(1, 2, 3)",
    ast.Set: "sets are not supported",
    ast.Dict: "dictionaries are not supported",
    ast.JoinedStr: "text (f-strings) is not a number",
    ast.FormattedValue: "text (f-strings) is not a number",
}
_NUMBER_TEXT = re.compile(r"(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?", re.ASCII)


# --- checking ------------------------------------------------------------------------------


def _known_names() -> str:
    return "constants " + ", ".join(CONSTANTS) + "; functions " + ", ".join(FUNCTIONS)


def parse(expression: str) -> ast.Expression:
    """Parse and check ``expression``: raises before anything is evaluated."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationLimitError(
            f"the expression is {len(expression):,} characters long; the limit is "
            f"{MAX_EXPRESSION_CHARS:,}",
            expression,
        )
    if not expression.strip():
        raise CalculationSyntaxError("the expression is empty")
    if not expression.isascii():
        bad = next(ch for ch in expression if not ch.isascii())
        raise CalculationSyntaxError(
            f"unexpected character {bad!r}", expression,
            "write operators as + - * / ** and numbers with ASCII digits",
        )
    depth = deepest = 0
    for ch in expression:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise CalculationLimitError(
            f"parentheses are nested {deepest} deep; the limit is {MAX_NESTING}", expression
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculationSyntaxError(
            f"not an arithmetic expression ({exc.msg})", expression
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, parser limits
        raise CalculationSyntaxError(
            f"not an arithmetic expression ({type(exc).__name__})", expression
        ) from None
    _check(tree, expression)
    return tree


def _check(tree: ast.Expression, expression: str) -> None:
    """Refuse every construct outside the whitelist, wherever it is in the tree (also in
    branches that evaluation would never reach)."""
    # A node's depth is the number of operations around it: the number under ``- - 1``
    # is at depth 2, so MAX_DEPTH operations nested in one another pass and one more fails.
    stack: list[tuple[ast.AST, int]] = [(tree.body, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CalculationLimitError(
                f"the expression nests more than {MAX_DEPTH} operations in one another",
                expression,
            )
        _check_node(node, expression)
        if isinstance(node, ast.Call):  # the function's name is not a value: walk the args
            children: list[ast.AST] = list(node.args)
        else:
            children = [child for child in ast.iter_child_nodes(node)
                        if not isinstance(child, (ast.operator, ast.unaryop, ast.expr_context))]
            if isinstance(node, (ast.BinOp, ast.UnaryOp)):
                _check_node(node.op, expression)
        stack.extend((child, depth + 1) for child in children)


def _check_node(node: ast.AST, expression: str) -> None:
    if isinstance(node, (ast.Load, ast.UAdd, ast.USub)):
        return
    if isinstance(node, ast.operator):
        if type(node) in _BINARY:
            return
        raise CalculationNotAllowed(
            _REFUSED_BINARY.get(type(node), f"operator {type(node).__name__}"), expression
        )
    if isinstance(node, ast.BinOp):
        return
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, (ast.UAdd, ast.USub)):
            return
        what = "'not'" if isinstance(node.op, ast.Not) else "'~' (bitwise not)"
        raise CalculationNotAllowed(f"{what} is not arithmetic", expression)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise CalculationNotAllowed(f"{value!r} is not a number", expression)
        if isinstance(value, complex):
            raise CalculationNotAllowed("complex numbers are not supported", expression)
        if not isinstance(value, (int, float)):
            raise CalculationNotAllowed("text is not a number", expression)
        return
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return
        if node.id in FUNCTIONS:
            raise CalculationSyntaxError(
                f"function {node.id!r} needs its argument in parentheses",
                expression, f"write {FUNCTIONS[node.id].usage}",
            )
        raise CalculationNotAllowed(
            f"unknown name {node.id!r}", expression, f"the calculator knows {_known_names()}"
        )
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            raise CalculationNotAllowed(
                f"attribute access ('.{func.attr}') is not allowed", expression
            )
        if not isinstance(func, ast.Name):
            raise CalculationNotAllowed(
                "only the calculator's functions can be called, by name", expression,
                f"the calculator knows {_known_names()}",
            )
        spec = FUNCTIONS.get(func.id)
        if spec is None:
            raise CalculationNotAllowed(
                f"function {func.id!r} is not available", expression,
                f"the calculator knows {_known_names()}",
            )
        if node.keywords:
            raise CalculationNotAllowed(
                f"keyword arguments are not supported; write {spec.usage}", expression
            )
        if not spec.min_args <= len(node.args) <= spec.max_args:
            raise CalculationSyntaxError(
                f"{func.id}() takes {_arity(spec)}, got {len(node.args)}",
                expression, f"write {spec.usage}",
            )
        # Only the arguments are walked: the function name is not a value here.
        return
    template = _REFUSED_NODES.get(type(node))
    if template is not None:
        raise CalculationNotAllowed(
            template.format(attr=getattr(node, "attr", "")), expression
        )
    raise CalculationNotAllowed(f"{type(node).__name__} is not arithmetic", expression)


def _arity(spec: _Function) -> str:
    if spec.min_args == spec.max_args:
        return f"{spec.min_args} argument" + ("s" if spec.min_args != 1 else "")
    return f"{spec.min_args} to {spec.max_args} arguments"


# --- evaluating ----------------------------------------------------------------------------


def evaluate(expression: str) -> Evaluation:
    """Evaluate one arithmetic expression in Python syntax, or raise ``CalculationError``.

    Every refusal happens in microseconds to milliseconds: the tree is checked before any
    arithmetic, and each power, factorial and result is size-checked before it grows.
    """
    tree = parse(expression)
    walker = _Walker(expression)
    try:
        value = walker.eval(tree.body)
    except CalculationError as exc:
        if exc.expression:
            raise
        raise type(exc)(exc.reason, expression, exc.hint) from None
    except ZeroDivisionError:
        raise CalculationMathError("division by zero", expression) from None
    except OverflowError as exc:
        raise CalculationLimitError(f"a number got too large ({exc})", expression) from None
    except (ArithmeticError, ValueError) as exc:
        raise CalculationMathError(f"{type(exc).__name__}: {exc}", expression) from None
    return Evaluation(expression, value, tuple(walker.steps))


class _Walker:
    """Evaluates a checked tree; records each operation as a step."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.steps: list[str] = []
        self.dropped = 0

    def step(self, text: str) -> None:
        if len(self.steps) < MAX_STEPS:
            self.steps.append(text)
        else:
            self.dropped += 1
            if self.dropped == 1:
                self.steps.append("...")

    def eval(self, node: ast.expr) -> Number:
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand)
            return fit(-value) if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return self._literal(node)
        if isinstance(node, ast.Name):
            return CONSTANTS[node.id]
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculationNotAllowed(f"{type(node).__name__} is not arithmetic")  # unreachable

    def _literal(self, node: ast.Constant) -> Number:
        value = node.value
        text = ast.get_source_segment(self.source.strip(), node) or repr(value)
        text = text.replace("_", "")
        match = _NUMBER_TEXT.fullmatch(text)
        if match is None or not (match.group(1) or match.group(2)):
            if isinstance(value, int):  # 0x1f, 0o17, 0b101: Python already read them
                return fit(value)
            raise CalculationSyntaxError(f"cannot read the number {text!r}")
        whole, decimals, exponent = match.group(1), match.group(2) or "", match.group(3)
        power10 = int(exponent or 0)
        if abs(power10) > MAX_LITERAL_EXPONENT:
            raise CalculationLimitError(
                f"the number {text} is out of range (exponents up to "
                f"{MAX_LITERAL_EXPONENT:,} are read)"
            )
        if power10 - len(decimals) > MAX_RESULT_BITS * _LOG10_2 + 1 and int(whole + decimals):
            raise _too_large(len(whole) + power10, f"the number {text}")
        digits = int(whole + decimals or "0")
        return fit(Fraction(digits) * Fraction(10) ** (power10 - len(decimals)))

    def _binop(self, node: ast.BinOp) -> Number:
        op = _BINARY[type(node.op)]
        left = self.eval(node.left)
        # "240 + 15%" is 240 plus 15% of 240, as on a desk calculator.
        if op in "+-" and _is_percent(node.right):
            rate = self.eval(node.right)
            share = combine("*", left, rate)
            result = combine(op, left, share)
            self.step(f"{_operand(left)} {op} {_show(rate * 100)}% of {_operand(left)} "
                      f"= {_operand(left)} {op} {_operand(share)} = {_show(result)}")
            return result
        right = self.eval(node.right)
        result = combine(op, left, right)
        self.step(f"{_operand(left)} {op} {_operand(right)} = {_show(result)}")
        return result

    def _call(self, node: ast.Call) -> Number:
        name = node.func.id  # type: ignore[attr-defined]  # checked: a Name
        spec = FUNCTIONS[name]
        args = [self.eval(arg) for arg in node.args]
        result = fit(spec.impl(*args))
        if name == "percent":
            self.step(f"{_show(args[0])}% = {_show(result)}")
        else:
            self.step(f"{name}({', '.join(_show(a) for a in args)}) = {_show(result)}")
        return result


def _is_percent(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "percent")


def _show(value: Number) -> str:
    """A short text for a step: long numbers are abbreviated."""
    if isinstance(value, int):
        text = str(value)
        if len(text) > 30:
            return f"{text[:12]}...({len(text.lstrip('-')):,} digits)"
        return text
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return _show(value.numerator)
        text = f"{value.numerator}/{value.denominator}"
        if len(text) <= 30:
            return text
        with decimal.localcontext() as context:
            context.prec = READABLE_DIGITS
            return f"{decimal.Decimal(value.numerator) / value.denominator:.{READABLE_DIGITS}g}"
    if isinstance(value, float):
        return f"{value:.{READABLE_DIGITS}g}"
    return repr(value)


def _operand(value: Number) -> str:
    """``_show`` in parentheses where precedence would misread it (``8 ** (1/3)``)."""
    text = _show(value)
    if value < 0 or (isinstance(value, Fraction) and value.denominator != 1) \
            or "e" in text:
        return f"({text})"
    return text


def describe_functions() -> Sequence[str]:
    """Each function's usage, for docs and messages."""
    return [spec.usage for spec in FUNCTIONS.values()]


__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_CHARS",
    "MAX_FACTORIAL",
    "MAX_NESTING",
    "MAX_RESULT_BITS",
    "Evaluation",
    "evaluate",
    "fit",
    "parse",
    "power",
    "readable_number",
]
