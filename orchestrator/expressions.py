"""Safe arithmetic/boolean expressions such as ``beta <= gamma`` or ``fidelity >= 0.9``.

Parsed with :mod:`ast` and evaluated by walking the tree over numpy arrays, never with
``eval``: only names, numbers, strings, arithmetic, comparisons, ``and``/``or``/``not``,
``in`` with a literal list and a few math functions are allowed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
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
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"'{text}' is not a valid expression ({exc.msg})") from None
        self.names: set[str] = set()
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self.names.add(node.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool)):
                raise ValueError(f"'{self.text}': constant {node.value!r} is not allowed")
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.Compare):
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
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            if node.keywords:
                raise ValueError(f"'{self.text}': keyword arguments are not allowed")
            for arg in node.args:
                self._check(arg)
        else:
            allowed = ", ".join(sorted(_FUNCS))
            raise ValueError(
                f"'{self.text}': {type(node).__name__} is not allowed "
                f"(use names, numbers, arithmetic, comparisons, and/or/not, {allowed})"
            )

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
            result = self._eval(node.values[0], env)
            for value in node.values[1:]:
                result = combine(result, self._eval(value, env))
            return result
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
