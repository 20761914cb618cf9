"""MicroPython language behaviour a board script may rely on, for CPython.

Differences that MicroPython's own BLE tests, micropython-lib's aioble (and board scripts)
rely on:

- ``bytes + str`` and ``bytes += str`` work (a str has the buffer protocol there and is
  concatenated as its UTF-8 bytes); CPython raises TypeError. aioble's ``_append`` does
  ``struct.pack(...) + name``.
- ``memoryview(str)`` is a read-only view of the str's UTF-8 bytes (aioble's
  ``L2CAPChannel.send("text")``); CPython raises TypeError.
- ``buf[i] = v`` on a bytearray (or array of bytes) keeps the low 8 bits of an int out of
  range (``buf[0] = 256`` stores 0); CPython raises ValueError.

``blebridge run`` compiles the script with every ``+``, ``+=``, ``memoryview(x)`` call and
subscript assignment routed through :func:`mp_add` / :func:`mp_memoryview` /
:func:`mp_setitem`, which try the CPython operation first and only on its TypeError/ValueError
apply MicroPython's rule. The same applies to the user's modules the script imports (see
:class:`DialectFinder`): modules of the script's directory, PYTHONPATH and any other directory
on sys.path that is not Python's (stdlib, site-packages) or blebridge's.
"""
from __future__ import annotations

import ast
import importlib.machinery
import os
import site
import sys
import sysconfig
from typing import Any, Optional, Sequence

#: Names the rewritten script uses for the helpers (set in the script's globals).
HELPER = "__blebridge_mp_add__"
SETITEM_HELPER = "__blebridge_mp_setitem__"
MEMORYVIEW_HELPER = "__blebridge_mp_memoryview__"


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


def mp_memoryview(obj: Any) -> memoryview:
    try:
        return memoryview(obj)
    except TypeError:
        if isinstance(obj, str):
            return memoryview(obj.encode("utf-8"))
        raise


HELPERS = {HELPER: mp_add, SETITEM_HELPER: mp_setitem, MEMORYVIEW_HELPER: mp_memoryview}


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

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == "memoryview"
                and len(node.args) == 1 and not node.keywords
                and not isinstance(node.args[0], ast.Starred)):
            node.func = ast.copy_location(ast.Name(id=MEMORYVIEW_HELPER, ctx=ast.Load()), node.func)
        return node

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


# -- the user's modules ----------------------------------------------------------------------

def _python_dirs() -> list[str]:
    """Directories whose modules are Python's or installed packages: never rewritten."""
    dirs = set()
    for scheme_path in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(scheme_path)
        if path:
            dirs.add(path)
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:     # virtualenvs of old design have no getsitepackages
        pass
    user_site = getattr(site, "USER_SITE", None)
    if user_site:
        dirs.add(user_site)
    # blebridge itself (its shims included), wherever it is imported from.
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [os.path.realpath(d) for d in dirs]


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class DialectLoader(importlib.machinery.SourceFileLoader):
    """Loads a user's module with MicroPython's rules (compile_script) and its helpers in
    its globals. The rewritten code is never cached as .pyc: a plain CPython import of the
    same file must not get it."""

    def get_code(self, fullname: str) -> Any:
        source = self.get_source(fullname)
        if source is None:
            raise ImportError(f"no source for {fullname}", name=fullname)
        return compile_script(source, self.get_filename(fullname))

    def exec_module(self, module: Any) -> None:
        module.__dict__.update(HELPERS)
        super().exec_module(module)


class DialectFinder:
    """A meta path finder that finds modules exactly as sys.path's PathFinder does (it stands
    just before it), and loads the user's source modules with :class:`DialectLoader`. A module
    is the user's unless it lies in a directory of :func:`_python_dirs` (or ``exclude``)."""

    def __init__(self, exclude: Sequence[str] = ()) -> None:
        self._not_user = _python_dirs() + [os.path.realpath(d) for d in exclude]

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        origin = os.path.realpath(spec.origin or "")
        if any(_within(origin, d) for d in self._not_user):
            return spec
        spec.loader = DialectLoader(spec.loader.name, spec.loader.path)
        return spec

    def invalidate_caches(self) -> None:
        importlib.machinery.PathFinder.invalidate_caches()


def install_import_hook(exclude: Sequence[str] = ()) -> DialectFinder:
    """Put a :class:`DialectFinder` just before the PathFinder in sys.meta_path (idempotent;
    ``exclude``: more directories whose modules are not the user's)."""
    for finder in sys.meta_path:
        if isinstance(finder, DialectFinder):
            return finder
    finder = DialectFinder(exclude)
    index = next((i for i, f in enumerate(sys.meta_path)
                  if f is importlib.machinery.PathFinder), len(sys.meta_path))
    sys.meta_path.insert(index, finder)
    return finder
