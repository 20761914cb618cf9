"""MicroPython language behaviour a board script may rely on, for CPython.

MicroPython lets ``bytes + str`` and ``bytes += str`` through (a str has the buffer protocol
there, so it is concatenated as its UTF-8 bytes); CPython raises TypeError. MicroPython's own
BLE tests build advertising payloads that way. ``blebridge run`` compiles the script with
every ``+`` and ``+=`` routed through :func:`mp_add`, which tries the CPython operation first
and only on TypeError applies MicroPython's rule. Modules the script imports are untouched.
"""
from __future__ import annotations

import ast
from typing import Any

#: Name the rewritten script uses for the helper (set in the script's globals).
HELPER = "__blebridge_mp_add__"


def mp_add(left: Any, right: Any) -> Any:
    try:
        return left + right
    except TypeError:
        if isinstance(left, (bytes, bytearray)) and isinstance(right, str):
            return left + right.encode("utf-8")
        raise


class _AddRewriter(ast.NodeTransformer):
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


def compile_script(source: str, filename: str) -> Any:
    """Compile ``source`` with MicroPython's ``bytes + str`` rule (see the module doc)."""
    tree = ast.parse(source, filename, "exec")
    tree = ast.fix_missing_locations(_AddRewriter().visit(tree))
    return compile(tree, filename, "exec")
