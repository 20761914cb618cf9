"""MicroPython language behaviour a board script may rely on, for CPython.

Two differences that MicroPython's own BLE tests (and board scripts) rely on:

- ``bytes + str`` and ``bytes += str`` work (a str has the buffer protocol there and is
  concatenated as its UTF-8 bytes); CPython raises TypeError.
- ``buf[i] = v`` on a bytearray (or array of bytes) keeps the low 8 bits of an int out of
  range (``buf[0] = 256`` stores 0); CPython raises ValueError.

``blebridge run`` compiles the script with every ``+``, ``+=`` and subscript assignment routed
through :func:`mp_add` / :func:`mp_setitem`, which try the CPython operation first and only on
its TypeError/ValueError apply MicroPython's rule. Modules the script imports are untouched.
"""
from __future__ import annotations

import ast
from typing import Any

#: Names the rewritten script uses for the helpers (set in the script's globals).
HELPER = "__blebridge_mp_add__"
SETITEM_HELPER = "__blebridge_mp_setitem__"


def mp_add(left: Any, right: Any) -> Any:
    try:
        return left + right
    except TypeError:
        if isinstance(left, (bytes, bytearray)) and isinstance(right, str):
            return left + right.encode("utf-8")
        raise


def mp_setitem(target: Any, index: Any, value: Any) -> None:
    try:
        target[index] = value
    except ValueError:
        if isinstance(target, bytearray) and isinstance(value, int) and not isinstance(index, slice):
            target[index] = value & 0xFF
            return
        raise


HELPERS = {HELPER: mp_add, SETITEM_HELPER: mp_setitem}


class _AddRewriter(ast.NodeTransformer):
    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Subscript):
            return node
        target = node.targets[0]
        call = ast.Call(func=ast.Name(id=SETITEM_HELPER, ctx=ast.Load()),
                        args=[target.value, _index_expr(target.slice), node.value], keywords=[])
        return ast.copy_location(ast.Expr(value=call), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Add):
            return node
        call = ast.Call(func=ast.Name(id=HELPER, ctx=ast.Load()), args=[node.left, node.right],
                        keywords=[])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Add) or not isinstance(node.target, ast.Name):
            return node
        # x += y  ->  x = helper(x, y): same result for immutable values; for a bytearray or
        # list target CPython's in-place add would mutate it, so keep those in place.
        load = ast.Name(id=node.target.id, ctx=ast.Load())
        value = ast.Call(func=ast.Name(id=HELPER, ctx=ast.Load()), args=[load, node.value], keywords=[])
        test = ast.Call(func=ast.Name(id="isinstance", ctx=ast.Load()),
                        args=[ast.Name(id=node.target.id, ctx=ast.Load()),
                              ast.Tuple(elts=[ast.Name(id="bytes", ctx=ast.Load()),
                                              ast.Name(id="str", ctx=ast.Load())], ctx=ast.Load())],
                        keywords=[])
        rewritten = ast.If(test=test,
                           body=[ast.Assign(targets=[ast.Name(id=node.target.id, ctx=ast.Store())],
                                            value=value)],
                           orelse=[node])
        return ast.copy_location(rewritten, node)


def _index_expr(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.Slice):
        args = [n if n is not None else ast.Constant(value=None) for n in (node.lower, node.upper, node.step)]
        return ast.Call(func=ast.Name(id="slice", ctx=ast.Load()), args=args, keywords=[])
    return node


def compile_script(source: str, filename: str, mode: str = "exec") -> Any:
    """Compile ``source`` with MicroPython's rules above (see the module doc); ``mode`` as for
    compile() ("single": one statement typed at a prompt, its expression values echoed)."""
    tree = ast.parse(source, filename, mode)
    tree = ast.fix_missing_locations(_AddRewriter().visit(tree))
    return compile(tree, filename, mode)
