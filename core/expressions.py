"""Safe arithmetic/boolean expressions such as ``beta <= gamma`` or ``fidelity >= 0.9``.

Parsed with :mod:`ast` and evaluated by walking the tree over numpy arrays, never with
``eval``: only names, numbers, strings, arithmetic, comparisons, ``and``/``or``/``not``,
``in`` with a literal list and a few math functions are allowed.

Like simpleeval, powers and repeated strings are bounded: ``9 ** 9 ** 9 ** 9`` would take
Python's big integers hours, and ``"a" * 10 ** 9`` a gigabyte. Constant parts are folded when
the expression is parsed, so such an expression is refused at load time, naming the fix.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_POWER = 4_000_000  # simpleeval's bound on a base or an exponent
# simpleeval's bound alone still lets 3999999 ** 3999999 run for minutes: bound the result too
MAX_INT_BITS = 4096
MAX_TEXT_LENGTH = 1000
MAX_STRING_LENGTH = 100_000  # simpleeval's bound on a string built by + or *


class ExpressionTooLarge(ValueError):
    """An operation whose result would be too large to compute (refused, never attempted)."""


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray)


def _safe_pow(a: Any, b: Any) -> Any:
    # numpy arrays overflow to inf (floats) or wrap (ints) at once; only Python numbers hang
    if not (_is_array(a) or _is_array(b)):
        if abs(a) > MAX_POWER or abs(b) > MAX_POWER:
            raise ExpressionTooLarge(
                f"power {a!r} ** {b!r} is too large (base and exponent are limited to {MAX_POWER:,})"
            )
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            if b * math.log2(abs(a)) > MAX_INT_BITS:
                raise ExpressionTooLarge(f"power {a!r} ** {b!r} is too large (over {MAX_INT_BITS} bits)")
    return operator.pow(a, b)


def _safe_mul(a: Any, b: Any) -> Any:
    for text, times in ((a, b), (b, a)):
        if isinstance(text, str) and not _is_array(times) and len(text) * abs(int(times)) > MAX_STRING_LENGTH:
            raise ExpressionTooLarge(f"repeating a string {times!r} times is too large")
        if _is_array(times) and isinstance(text, str):
            raise ExpressionTooLarge("a string cannot be repeated by a parameter's values")
    return operator.mul(a, b)


def _safe_add(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str) and len(a) + len(b) > MAX_STRING_LENGTH:
        raise ExpressionTooLarge("the joined string is too long")
    return operator.add(a, b)


_BINOPS = {
    ast.Add: _safe_add,
    ast.Sub: operator.sub,
    ast.Mult: _safe_mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _safe_pow,
}
_CMPOPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCS = {
    "abs": np.abs,
    "min": np.minimum,
    "max": np.maximum,
    "log": np.log,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
}


class Expression:
    """A validated expression. ``names`` are the variables it reads."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_TEXT_LENGTH:  # deep nesting would exhaust the parser's recursion
            raise ValueError(f"expression of {len(text)} characters is too long (at most {MAX_TEXT_LENGTH})")
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
            self.names: set[str] = set()
            self._check(self._tree)
            self._fold(self._tree)
        except SyntaxError as exc:
            raise ValueError(f"'{text}' is not a valid expression ({exc.msg})") from None
        except (RecursionError, MemoryError):
            raise ValueError(f"'{text[:60]}...' is nested too deeply; simplify it") from None

    def _fold(self, node: ast.AST) -> None:
        """Compute every constant part now, so an oversized or failing one is refused at load time."""
        if not isinstance(node, ast.expr):
            return
        literal = isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Set))  # 'in' lists: their items
        if not literal and not any(isinstance(n, ast.Name) for n in ast.walk(node)):
            try:
                self._eval(node, {})
            except ExpressionTooLarge as exc:
                raise ValueError(f"'{self.text}': {exc}; use a smaller constant") from None
            except (ArithmeticError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"'{self.text}': its constant part cannot be computed ({exc}); fix it"
                ) from None
            return
        for child in ast.iter_child_nodes(node):
            self._fold(child)

    def _check(self, node: ast.AST) -> None:
        """Refuse anything but names, plain constants, arithmetic, comparisons, and/or/not and the
        allowed functions; note the names used."""
        if isinstance(node, ast.Name):
            self.names.add(node.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool)):
                raise ValueError(f"'{self.text}': constant {node.value!r} is not allowed")
        elif isinstance(node, ast.Compare):
            self._check_compare(node)
        elif self._allowed(node):
            operands = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
            for child in operands:
                if isinstance(child, ast.expr):
                    self._check(child)
        else:
            allowed = ", ".join(sorted(_FUNCS))
            raise ValueError(
                f"'{self.text}': {type(node).__name__} is not allowed "
                f"(use names, numbers, arithmetic, comparisons, and/or/not, {allowed})"
            )

    def _allowed(self, node: ast.AST) -> bool:
        """An operator or call whose operands are then checked one by one."""
        if isinstance(node, ast.BoolOp):
            return True
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, (ast.Not, ast.USub, ast.UAdd))
        if isinstance(node, ast.BinOp):
            return type(node.op) in _BINOPS
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            if node.keywords:
                raise ValueError(f"'{self.text}': keyword arguments are not allowed")
            return True
        return False

    def _check_compare(self, node: ast.Compare) -> None:
        self._check(node.left)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                    raise ValueError(f"'{self.text}': 'in' needs a literal list, e.g. x in [1, 2]")
                for elt in right.elts:
                    self._check(elt)
            elif type(op) in _CMPOPS:
                self._check(right)
            else:
                raise ValueError(f"'{self.text}': operator {type(op).__name__} is not allowed")

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate on scalars or equally long numpy arrays (element-wise)."""
        return self._eval(self._tree, values)

    def _eval(self, node: ast.AST, env: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            combined = self._eval(node.values[0], env)
            for value in node.values[1:]:
                combined = combine(combined, self._eval(value, env))
            return combined
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return np.logical_not(operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            result: Any = True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)):
                    options = [self._eval(e, env) for e in right_node.elts]  # type: ignore[attr-defined]
                    hit = np.isin(np.asarray(left, dtype=object), np.asarray(options, dtype=object))
                    ok = hit if isinstance(op, ast.In) else np.logical_not(hit)
                    right = left
                else:
                    right = self._eval(right_node, env)
                    ok = _CMPOPS[type(op)](left, right)
                result = np.logical_and(result, ok)
                left = right
            return result
        if isinstance(node, ast.Call):
            return _FUNCS[node.func.id](*(self._eval(a, env) for a in node.args))  # type: ignore[attr-defined]
        raise AssertionError(node)  # _check rejected everything else

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
