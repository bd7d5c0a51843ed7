"""Property tests: random text never crashes or hangs the extractor or the evaluator, and
random arithmetic gets the exact answer.

"Never crashes" means the only exception is ``CalculationError`` (the tool's typed error);
"never hangs" is hypothesis's per-example deadline.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sof_calculator import CalculationError, evaluate, extract, rewrite

QUICK = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces the extractor and evaluator react to, so random text reaches their corners.
PIECES = [
    "1", "2", "15", "0", "-", "+", "*", "/", "//", "%", "**", "^", "(", ")", ",", ".", "!",
    "e", "pi", "x", "of", "percent", "plus", "minus", "times", "divided by", "to the power of",
    "squared", "square root of", "sqrt", "log", "log2", "ln", "factorial", "max(", "min(",
    "round(", "9**9**9", "1e999", "1,234", "2024-01-15", "what is", "?", "lambda", "__class__",
    "\u221a", "\u00b2", "\u00d7", "\u03c0", "$", " ", "  ", "\n", "999999999999", "0.5", ".5",
]
pieced = st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join)
joined = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=400), pieced, joined)


@QUICK
@given(any_text)
def test_extractor_never_crashes(text: str) -> None:
    try:
        found = extract(text)
    except CalculationError:
        return
    if found is not None:
        assert found.text and found.text in text
        with contextlib.suppress(CalculationError):
            evaluate(found.expression)


@QUICK
@given(any_text)
def test_evaluator_never_crashes(text: str) -> None:
    with contextlib.suppress(CalculationError):
        evaluate(text)


@QUICK
@given(any_text)
def test_rewrite_never_crashes(text: str) -> None:
    try:
        rewritten = rewrite(text)
        evaluate(rewritten if rewritten is not None else text)
    except CalculationError:
        pass


# --- exact answers -----------------------------------------------------------------------

Tree = tuple[str, Fraction]  # (expression text, its exact value)


def _combine(op: str, left: Tree, right: Tree) -> Tree | None:
    (a_text, a), (b_text, b) = left, right
    text = f"({a_text} {op} {b_text})"
    if op == "+":
        return text, a + b
    if op == "-":
        return text, a - b
    if op == "*":
        return text, a * b
    if op == "/":
        return None if b == 0 else (text, a / b)
    if b.denominator != 1 or not 0 <= b <= 6 or abs(a.numerator) > 10**6:  # "**"
        return None
    return text, a ** int(b)


def _trees(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    combined = st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), children, children).map(
        lambda parts: _combine(*parts)
    )
    return combined.filter(lambda tree: tree is not None)  # type: ignore[return-value]


leaves = st.one_of(
    st.integers(-1000, 1000).map(lambda n: (f"({n})", Fraction(n))),
    st.decimals(min_value=-100, max_value=100, places=3, allow_nan=False).map(
        lambda d: (f"({d})", Fraction(d))
    ),
)
arithmetic = st.recursive(leaves, _trees, max_leaves=12)


@QUICK
@given(arithmetic)
def test_arithmetic_is_exact(tree: Tree) -> None:
    text, value = tree
    try:
        result = evaluate(text)
    except CalculationError as exc:  # only the size and nesting guards may refuse
        assert "digits" in str(exc) or "nest" in str(exc) or "characters" in str(exc), exc
        return
    assert result.exact
    assert result.value == value
