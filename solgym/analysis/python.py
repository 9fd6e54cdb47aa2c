"""The analyser of Python actions, on libcst's concrete syntax tree.

One iterative walk over the tree collects facts (imports, bindings, functions, calls, state, launches,
strings); the rules are then evaluated against those facts. Names are resolved to qualified names
("torch.cuda.Stream") through imports and a flow-insensitive table of every binding in the module,
so aliases (`S = torch.cuda.Stream`, `t = torch; t.cuda`, `from torch import cuda as c`, function
defaults, returns of local functions, container literals, `getattr` with a literal) resolve to what
they name. Identifiers are NFKC-normalised first, as Python itself does. No metadata provider runs on
accepted code: positions are computed only when there is a violation to report.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst

from solgym.analysis import cxx
from solgym.analysis.tables import (
    CONTAINER_FACTORIES,
    FUNCTOOLS_CACHES,
    IDENTITY_METHODS,
    JIT_DECORATORS,
    LOAD_INLINE,
    SHAPE_ATTRIBUTES,
    STRICT_IMPORTS,
    TENSOR_ALLOWED_METHODS,
    TENSOR_COMPUTE_METHODS,
    TENSOR_FACTORIES,
    TENSOR_VIEW_METHODS,
    import_rule,
    lookup,
)


@dataclass
class Finding:
    """A rule broken at a node of a Python source, or at a known line (C++ inside strings)."""

    rule: str
    message: str
    node: cst.CSTNode | None = None
    line: int | None = None
    file: str | None = None


@dataclass
class _Function:
    name: str
    node: cst.FunctionDef | cst.Lambda
    params: list[str] = field(default_factory=list)
    tensor_params: set[str] = field(default_factory=set)
    returns: list[cst.BaseExpression] = field(default_factory=list)
    local: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)
    calls: list[tuple[str, cst.Call, tuple[cst.CSTNode, ...]]] = field(default_factory=list)
    launches: list[tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] = field(default_factory=list)
    loads: set[str] = field(default_factory=set)
    method_calls: list[tuple[cst.Call, tuple[cst.CSTNode, ...]]] = field(default_factory=list)
    jit: bool = False


@dataclass(frozen=True)
class _Ctx:
    top: str  # the top-level symbol this node belongs to
    func: _Function | None  # innermost function
    jit: bool  # inside a Triton JIT function
    guards: tuple[cst.CSTNode, ...] = ()  # enclosing try bodies / suppress() blocks
    inner: bool = False  # the value of an Attribute: not itself a reference
    store: bool = False  # an assignment target root
    stmt: int = 0  # index of the top-level statement


_SKIP_FIELDS = frozenset(
    (
        "lpar",
        "rpar",
        "comma",
        "dot",
        "semicolon",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "equal",
        "colon",
        "star",
        "whitespace_after_star",
        "whitespace_after_arg",
        "whitespace_before_colon",
        "whitespace_after_colon",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "operator",
        "asynchronous",
        "first_colon",
        "second_colon",
        "conversion",
        "start",
        "end",
        "quote",
        "prefix",
        "newline",
        "indent",
        "trailing_whitespace",
        "relative",
        "posonly_ind",
        "default_indent",
        "default_newline",
        "encoding",
        "has_trailing_newline",
        "type_parameters",
    )
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(node: cst.CSTNode) -> tuple[str, ...]:
    kind = type(node)
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(node)
            if f.name not in _SKIP_FIELDS and not f.name.startswith("whitespace")
        )
        _FIELDS[kind] = names
    return names


def _children(node: cst.CSTNode, name: str) -> Iterator[cst.CSTNode]:
    value = getattr(node, name)
    if isinstance(value, cst.CSTNode):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            if isinstance(item, cst.CSTNode):
                yield item


_NFKC: dict[str, str] = {}


def nfkc(name: str) -> str:
    """The identifier as Python sees it (NFKC-normalised), cached."""
    out = _NFKC.get(name)
    if out is None:
        out = name if name.isascii() else unicodedata.normalize("NFKC", name)
        if len(_NFKC) < 50_000:
            _NFKC[name] = out
    return out


def dotted(node: cst.CSTNode | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain (NFKC-normalised), else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(nfkc(node.attr.value))
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(nfkc(node.value))
    return ".".join(reversed(parts))


class Analyser:
    """Analyses one Python source; `findings` holds what it found after `run()`."""

    def __init__(
        self,
        module: cst.Module,
        *,
        strict: bool,
        entry_point: str,
        file: str | None = None,
        roots: Iterable[str] = (),
        local_modules: Iterable[str] = (),
    ) -> None:
        self.module = module
        self.strict = strict
        self.entry = entry_point
        self.file = file
        self.roots = set(roots)
        self.local_modules = set(local_modules)
        self.findings: list[Finding] = []
        self.bindings: dict[str, list[cst.BaseExpression | str]] = {}
        self.functions: dict[str, _Function] = {}
        self.state: set[str] = set()
        self.refs: dict[str, set[str]] = {}
        self.stores: dict[int, set[str]] = {}
        self.jit_defs: list[tuple[str, str, cst.FunctionDef]] = []  # (name, top symbol, node)
        self.references: list[tuple[cst.CSTNode, _Ctx]] = []
        self.calls: list[tuple[cst.Call, _Ctx]] = []
        self.subscripts: list[tuple[cst.Subscript, _Ctx]] = []
        self.comparisons: list[tuple[cst.Comparison, _Ctx]] = []
        self.assign_targets: list[tuple[cst.BaseExpression, cst.CSTNode | None, _Ctx]] = []
        self.guards: list[tuple[cst.CSTNode, _Ctx]] = []
        self.strings: list[tuple[cst.BaseExpression, str]] = []
        self.decorated: list[tuple[str, cst.Decorator, _Ctx]] = []
        self.all_names: set[str] = set()
        self.cxx_defines: dict[str, str] = {}
        self.module_bound: set[str] = set()
        self.classes: list[cst.ClassDef] = []
        self.instances: set[str] = set()
        self.where: dict[int, tuple[int, int]] = {}  # node id -> (top-level statement, visit order)
        self._memo: dict[int, frozenset[str]] = {}
        self._literals: dict[int, str | None] = {}
        self._resolving: set[int] = set()

    # ------------------------------------------------------------------------------------------ walk

    def run(self) -> list[Finding]:
        """Walk the module, then evaluate every rule; returns the findings."""
        self._walk()
        self._check_references()
        self._check_assignments()
        self._check_classes()
        self._check_calls()
        self._check_caching()
        self._check_fallbacks()
        self._check_decoys()
        return self.findings

    def _walk(self) -> None:
        stack: list[tuple[cst.CSTNode, _Ctx]] = []
        main_guards = [stmt for stmt in self.module.body if _is_main_guard(stmt)]
        if main_guards:
            text = self.module.code
            text = text if text.isascii() else unicodedata.normalize("NFKC", text)
            # Skipped only when __name__ appears nowhere else: no assignment can make the guard true on import.
            if text.count("__name__") != len(main_guards):
                main_guards = []
        for index, stmt in enumerate(reversed(self.module.body)):
            if any(stmt is guard for guard in main_guards):
                continue
            top = self._top_symbol(stmt, len(self.module.body) - 1 - index)
            stack.append((stmt, _Ctx(top, None, False, stmt=len(self.module.body) - 1 - index)))
        order = 0
        while stack:
            node, ctx = stack.pop()
            order += 1
            self.where[id(node)] = (ctx.stmt, order)
            visit = getattr(self, "_visit_" + type(node).__name__, None)
            pushed = visit(node, ctx, stack) if visit is not None else None
            if pushed:
                continue
            for name in reversed(_fields(node)):
                for child in reversed(list(_children(node, name))):
                    stack.append(
                        (
                            child,
                            ctx
                            if not (ctx.inner or ctx.store)
                            else dataclasses.replace(ctx, inner=False, store=False),
                        )
                    )

    def _push(self, stack: list, node: cst.CSTNode | None, ctx: _Ctx, **changes: object) -> None:
        if node is not None:
            stack.append((node, dataclasses.replace(ctx, **changes) if changes else ctx))

    def _top_symbol(self, stmt: cst.CSTNode, index: int) -> str:
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            return nfkc(stmt.name.value)
        return f"<stmt {index}>"

    def _record_store(self, ctx: _Ctx, name: str) -> None:
        if ctx.top.startswith("<stmt"):
            self.stores.setdefault(int(ctx.top[6:-1]), set()).add(name)

    def _bind(self, target: cst.CSTNode, value: cst.BaseExpression | str | None, ctx: _Ctx) -> None:
        if isinstance(target, cst.Name):
            name = nfkc(target.value)
            self._record_store(ctx, name)
            if ctx.func is None:
                self.module_bound.add(name)
            if value is not None:
                self.bindings.setdefault(name, []).append(value)
                if ctx.func is not None and not isinstance(value, str):
                    ctx.func.local.setdefault(name, []).append(value)
            if ctx.func is None and isinstance(value, cst.BaseExpression) and self._is_container(value):
                self.state.add(name)
            elif ctx.func is None and isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
                self.instances.add(name)  # state if it instantiates a local class (decided in _check_caching)
        elif isinstance(target, cst.Tuple | cst.List):
            elements = [e.value for e in target.elements]
            if isinstance(value, cst.Tuple | cst.List) and len(value.elements) == len(elements):
                for t, v in zip(elements, value.elements, strict=True):
                    self._bind(t, v.value, ctx)
            else:
                for t in elements:
                    self._bind(t, value, ctx)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, value, ctx)

    def _is_container(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Dict | cst.List | cst.Set | cst.DictComp | cst.ListComp | cst.SetComp):
            return True
        if isinstance(value, cst.Call):
            name = dotted(value.func)
            return name is not None and (
                name in CONTAINER_FACTORIES or name.split(".")[-1] in CONTAINER_FACTORIES
            )
        return False

    # visitors return True when they pushed the children themselves

    def _visit_Name(self, node: cst.Name, ctx: _Ctx, stack: list) -> bool:
        raw = node.value
        name = nfkc(raw)
        self.all_names.add(name)
        if raw != name:
            self._find(
                "obfuscation.identifier-spelling",
                f"identifier {raw!r} is spelled with compatibility characters; write it as {name!r}",
                node,
            )
        if not ctx.store:
            self.refs.setdefault(ctx.top, set()).add(name)
            if ctx.func is not None:
                ctx.func.loads.add(name)
            if not ctx.inner:
                self.references.append((node, ctx))
        return True

    def _visit_Attribute(self, node: cst.Attribute, ctx: _Ctx, stack: list) -> bool:
        attr = nfkc(node.attr.value)
        self.all_names.add(attr)
        if attr != node.attr.value:
            self._find(
                "obfuscation.identifier-spelling",
                f"attribute {node.attr.value!r} is spelled with compatibility characters; write {attr!r}",
                node,
            )
        if not ctx.store and not ctx.inner:
            self.references.append((node, ctx))
        func = ctx.func
        if (
            func is not None
            and isinstance(node.value, cst.Name)
            and attr in SHAPE_ATTRIBUTES | IDENTITY_METHODS
        ):
            param = nfkc(node.value.value)
            if param in func.params:
                func.tensor_params.add(param)
        self._push(stack, node.value, ctx, inner=True, store=False)
        return True

    def _visit_Import(self, node: cst.Import, ctx: _Ctx, stack: list) -> bool:
        for alias in node.names:
            module = dotted(alias.name) or ""
            self._check_import(module, node)
            bound = f"<local>.{module}" if self._is_local(module) else module
            if alias.asname is not None:
                self._bind(alias.asname.name, bound, ctx)
            else:
                root = (
                    bound.split(".")[0] if not self._is_local(module) else f"<local>.{module.split('.')[0]}"
                )
                self._bind(cst.Name(module.split(".")[0]), root, ctx)
        return True

    def _visit_ImportFrom(self, node: cst.ImportFrom, ctx: _Ctx, stack: list) -> bool:
        module = dotted(node.module) if node.module is not None else ""
        if node.relative:
            module = "." * len(node.relative) + (module or "")
        if isinstance(node.names, cst.ImportStar):
            self._check_import(module or "", node)
            self._find(
                "obfuscation.star-import",
                f"`from {module} import *` hides which names are bound; import names explicitly",
                node,
            )
            return True
        for alias in node.names:
            name = dotted(alias.name) or ""
            full = f"{module}.{name}" if module else name
            self._check_import(full, node)
            if self._is_local(full):
                full = f"<local>.{full.lstrip('.')}"
            target = alias.asname.name if alias.asname is not None else cst.Name(name)
            if isinstance(target, cst.Name):
                self._bind(target, full, ctx)
        return True

    def _check_import(self, module: str, node: cst.CSTNode) -> None:
        if self._is_local(module):
            return
        rule = import_rule(module)
        if not rule and self.strict and module.split(".")[0] not in STRICT_IMPORTS:
            self._find(
                "substitution.library",
                f"imports {module}, which is not on the strict policy's import list "
                f"({', '.join(sorted(STRICT_IMPORTS))})",
                node,
            )
            return
        if rule:
            self._find(rule, f"imports {module}; {_ADVICE.get(rule, 'remove it')}", node)

    def _is_local(self, module: str) -> bool:
        return module.startswith(".") or module.split(".")[0] in self.local_modules

    def _visit_FunctionDef(self, node: cst.FunctionDef, ctx: _Ctx, stack: list) -> bool:
        name = nfkc(node.name.value)
        self._record_store(ctx, name)
        func = _Function(name, node)
        params = node.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            func.params.append(nfkc(p.name.value))
        for p in (params.star_arg, params.star_kwarg):
            if isinstance(p, cst.Param):
                func.params.append(nfkc(p.name.value))
        jit = False
        for decorator in node.decorators:
            self.decorated.append((name, decorator, ctx))
            target = (
                decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
            )
            for q in self.resolve_static(target):
                if q in JIT_DECORATORS:
                    jit = True
        func.jit = jit
        if jit:
            self.jit_defs.append((name, ctx.top, node))
        if ctx.func is None and ctx.top == name:
            self.functions[name] = func  # the last top-level definition is the one Python keeps
        else:
            self.functions.setdefault(name, func)
        inner = dataclasses.replace(ctx, func=func, jit=ctx.jit or jit, inner=False, store=False)
        for decorator in node.decorators:
            self._push(stack, decorator.decorator, ctx)
        for p in (
            *params.posonly_params,
            *params.params,
            *params.kwonly_params,
            params.star_arg,
            params.star_kwarg,
        ):
            if isinstance(p, cst.Param):
                if p.default is not None:
                    self._bind(p.name, p.default, inner)
                    if self._is_container(p.default):
                        self.state.add(nfkc(p.name.value))
                    self._push(stack, p.default, ctx)
                if p.annotation is not None:
                    self._push(stack, p.annotation, ctx)
        self._push(stack, node.body, inner)
        return True

    def _visit_Lambda(self, node: cst.Lambda, ctx: _Ctx, stack: list) -> bool:
        func = _Function("<lambda>", node)
        for p in node.params.params:
            func.params.append(nfkc(p.name.value))
            if p.default is not None:
                self._push(stack, p.default, ctx)
        func.returns.append(node.body)
        self._push(stack, node.body, ctx, func=func, inner=False, store=False)
        return True

    def _visit_ClassDef(self, node: cst.ClassDef, ctx: _Ctx, stack: list) -> bool:
        self._record_store(ctx, nfkc(node.name.value))
        self.classes.append(node)
        for part in (*node.decorators, *node.bases, *node.keywords):
            self._push(stack, part, ctx)
        self._push(stack, node.body, ctx)
        return True

    def _visit_Return(self, node: cst.Return, ctx: _Ctx, stack: list) -> None:
        if ctx.func is not None and node.value is not None:
            ctx.func.returns.append(node.value)

    def _visit_Global(self, node: cst.Global, ctx: _Ctx, stack: list) -> bool:
        for item in node.names:
            self.state.add(nfkc(item.name.value))
        return True

    _visit_Nonlocal = _visit_Global

    def _target(
        self,
        stack: list,
        target: cst.CSTNode,
        value: cst.BaseExpression | None,
        ctx: _Ctx,
        stmt: cst.CSTNode | None = None,
    ) -> None:
        self._bind(target, value, ctx)
        for leaf in _target_leaves(target):
            if isinstance(leaf, cst.Attribute | cst.Subscript):
                self.assign_targets.append((leaf, stmt, ctx))
                if isinstance(leaf, cst.Attribute) and isinstance(leaf.value, cst.Name) and ctx.func is None:
                    owner = nfkc(leaf.value.value)
                    self.state.add(f"{owner}.{nfkc(leaf.attr.value)}")
                elif isinstance(leaf, cst.Attribute) and isinstance(leaf.value, cst.Name):
                    owner = nfkc(leaf.value.value)
                    if owner in self.functions or owner == self.entry:
                        self.state.add(f"{owner}.{nfkc(leaf.attr.value)}")
            self._push(stack, leaf, ctx, store=True)

    def _visit_Assign(self, node: cst.Assign, ctx: _Ctx, stack: list) -> bool:
        for t in node.targets:
            self._target(stack, t.target, node.value, ctx, node)
        self._push(stack, node.value, ctx)
        return True

    def _visit_AnnAssign(self, node: cst.AnnAssign, ctx: _Ctx, stack: list) -> bool:
        self._target(stack, node.target, node.value, ctx, node)
        self._push(stack, node.value, ctx)
        self._push(stack, node.annotation, ctx)
        return True

    def _visit_AugAssign(self, node: cst.AugAssign, ctx: _Ctx, stack: list) -> bool:
        self._target(stack, node.target, None, ctx, node)
        self._push(stack, node.value, ctx)
        if isinstance(node.target, cst.Name):
            self.refs.setdefault(ctx.top, set()).add(nfkc(node.target.value))
        return True

    def _visit_Del(self, node: cst.Del, ctx: _Ctx, stack: list) -> bool:
        self._target(stack, node.target, None, ctx, node)
        return True

    def _visit_NamedExpr(self, node: cst.NamedExpr, ctx: _Ctx, stack: list) -> bool:
        self._target(stack, node.target, node.value, ctx, node)
        self._push(stack, node.value, ctx)
        return True

    def _visit_For(self, node: cst.For, ctx: _Ctx, stack: list) -> bool:
        self._bind_iteration(stack, node.target, node.iter, ctx)
        for part in (node.iter, node.body, node.orelse):
            self._push(stack, part, ctx)
        return True

    def _visit_CompFor(self, node: cst.CompFor, ctx: _Ctx, stack: list) -> bool:
        self._bind_iteration(stack, node.target, node.iter, ctx)
        for part in (node.iter, *node.ifs, node.inner_for_in):
            self._push(stack, part, ctx)
        return True

    def _bind_iteration(
        self, stack: list, target: cst.CSTNode, iterable: cst.BaseExpression, ctx: _Ctx
    ) -> None:
        if isinstance(iterable, cst.Tuple | cst.List | cst.Set):
            for element in iterable.elements:
                self._target(stack, target, element.value, ctx)
        else:
            self._target(
                stack,
                target,
                cst.Subscript(iterable, [cst.SubscriptElement(cst.Index(cst.Integer("0")))]),
                ctx,
            )

    def _visit_With(self, node: cst.With, ctx: _Ctx, stack: list) -> bool:
        guarded = ctx
        for item in node.items:
            self._push(stack, item.item, ctx)
            if item.asname is not None:
                self._target(stack, item.asname.name, item.item, ctx)
            call = item.item.func if isinstance(item.item, cst.Call) else item.item
            if any(q.startswith("contextlib.suppress") for q in self.resolve_static(call)):
                guarded = dataclasses.replace(ctx, guards=ctx.guards + (node,))
                self.guards.append((node, ctx))
        self._push(stack, node.body, guarded)
        return True

    def _visit_Try(self, node: cst.Try, ctx: _Ctx, stack: list) -> bool:
        if node.handlers:
            self.guards.append((node, ctx))
            self._push(stack, node.body, ctx, guards=ctx.guards + (node,))
        else:
            self._push(stack, node.body, ctx)
        for part in (*node.handlers, node.orelse, node.finalbody):
            self._push(stack, part, ctx)
        return True

    _visit_TryStar = _visit_Try

    def _visit_ExceptHandler(self, node: cst.ExceptHandler, ctx: _Ctx, stack: list) -> bool:
        self._push(stack, node.type, ctx)
        self._push(stack, node.body, ctx)
        return True

    def _visit_Call(self, node: cst.Call, ctx: _Ctx, stack: list) -> bool:
        self.calls.append((node, ctx))
        func = ctx.func
        if isinstance(node.func, cst.Subscript) and func is not None:
            func.launches.append((node, ctx.guards))
        if func is not None and isinstance(node.func, cst.Name):
            func.calls.append((nfkc(node.func.value), node, ctx.guards))
        elif func is not None and isinstance(node.func, cst.Attribute):
            func.method_calls.append((node, ctx.guards))
        self._push(stack, node.func, ctx, inner=False, store=False)
        for arg in node.args:
            self._push(stack, arg.value, ctx, inner=False, store=False)
        return True

    def _visit_Subscript(self, node: cst.Subscript, ctx: _Ctx, stack: list) -> None:
        self.subscripts.append((node, ctx))

    def _visit_Comparison(self, node: cst.Comparison, ctx: _Ctx, stack: list) -> None:
        self.comparisons.append((node, ctx))

    def _visit_BinaryOperation(self, node: cst.BinaryOperation, ctx: _Ctx, stack: list) -> None:
        if isinstance(node.operator, cst.MatrixMultiply) and self.strict and not ctx.jit:
            self._find(
                "substitution.torch-compute",
                "the @ operator outside a kernel is a torch matmul; compute it in your kernel",
                node,
            )

    def _visit_SimpleString(self, node: cst.SimpleString, ctx: _Ctx, stack: list) -> bool:
        self._string(node)
        return True

    def _visit_ConcatenatedString(self, node: cst.ConcatenatedString, ctx: _Ctx, stack: list) -> bool:
        self._string(node)
        for part in _concat_parts(node):
            if isinstance(part, cst.FormattedString):
                self._push(stack, part, ctx)
        return True

    def _visit_FormattedString(self, node: cst.FormattedString, ctx: _Ctx, stack: list) -> None:
        self._string(node)

    def _string(self, node: cst.BaseExpression) -> None:
        text = self.const_str(node)
        if not text:
            return
        if _looks_like_cxx(text):
            self.strings.append((node, text))
        if _INSTALL.search(text):
            self._find(
                "escape.install",
                f"the string {text[:40]!r} installs packages; actions may not install packages",
                node,
            )

    # ----------------------------------------------------------------------------------- resolution

    def resolve_static(self, node: cst.CSTNode) -> frozenset[str]:
        """Qualified names `node` may denote, from imports seen so far (used during the walk)."""
        name = dotted(node)
        if name is None:
            return frozenset()
        root, _, rest = name.partition(".")
        out = set()
        for value in self.bindings.get(root, ()):
            if isinstance(value, str):
                out.add(f"{value}.{rest}" if rest else value)
        return frozenset(out)

    def resolve(self, node: cst.CSTNode | None, depth: int = 0) -> frozenset[str]:
        """Qualified names an expression may denote (empty when unknown). Call results end in '()'."""
        if node is None or depth > 24:
            return frozenset()
        key = id(node)
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        if key in self._resolving:
            return frozenset()
        self._resolving.add(key)
        try:
            out = frozenset(self._resolve(node, depth))
        finally:
            self._resolving.discard(key)
        self._memo[key] = out
        return out

    def _resolve(self, node: cst.CSTNode, depth: int) -> set[str]:
        if isinstance(node, cst.Name):
            name = nfkc(node.value)
            out: set[str] = set()
            for value in self.bindings.get(name, ()):
                out |= {value} if isinstance(value, str) else self.resolve(value, depth + 1)
            if name in self.functions and name not in self.bindings:
                out.add(f"<local>.{name}")
            # A module-level binding shadows the builtin everywhere; a local one only in its function, and
            # scopes are merged here, so the builtin stays possible.
            if name in _BUILTINS and name not in self.module_bound:
                out.add(f"builtins.{name}")
            return out
        if isinstance(node, cst.Attribute):
            attr = nfkc(node.attr.value)
            return {f"{q}.{attr}" for q in self.resolve(node.value, depth + 1)}
        if isinstance(node, cst.Call):
            return self._resolve_call(node, depth)
        if isinstance(node, cst.Subscript):
            return self._resolve_subscript(node, depth)
        if isinstance(node, cst.IfExp):
            return set(self.resolve(node.body, depth + 1) | self.resolve(node.orelse, depth + 1))
        if isinstance(node, cst.BooleanOperation):
            return set(self.resolve(node.left, depth + 1) | self.resolve(node.right, depth + 1))
        if isinstance(node, cst.NamedExpr):
            return set(self.resolve(node.value, depth + 1))
        return set()

    def _resolve_call(self, node: cst.Call, depth: int) -> set[str]:
        funcs = self.resolve(node.func, depth + 1)
        out: set[str] = set()
        args = [a for a in node.args if a.keyword is None]
        if isinstance(node.func, cst.Call) and args:
            inner = node.func
            inner_args = [a for a in inner.args if a.keyword is None]
            if inner_args and "operator.attrgetter" in self.resolve(inner.func, depth + 1):
                path = self.const_str(inner_args[0].value)
                if path is not None:
                    out |= {f"{q}.{nfkc(path)}" for q in self.resolve(args[0].value, depth + 1)}
        if "builtins.getattr" in funcs and len(args) >= 2:
            attr = self.const_str(args[1].value)
            if attr is not None:
                out |= {f"{q}.{nfkc(attr)}" for q in self.resolve(args[0].value, depth + 1)}
        if funcs & {"builtins.__import__", "importlib.import_module"} and args:
            module = self.const_str(args[0].value)
            if module is not None:
                out.add(module)
        callees = {q[8:] for q in funcs if q.startswith("<local>.") and "." not in q[8:]}
        if isinstance(node.func, cst.Name):
            callees.add(nfkc(node.func.value))
        for callee in callees:
            for value in self.bindings.get(callee, ()):
                if isinstance(value, cst.Lambda):
                    out |= self.resolve(value.body, depth + 1)
            if callee in self.functions:
                for ret in self.functions[callee].returns:
                    out |= self.resolve(ret, depth + 1)
        out |= {f"{q}()" for q in funcs if not q.startswith("<local>")}
        return out

    def _resolve_subscript(self, node: cst.Subscript, depth: int) -> set[str]:
        out: set[str] = set()
        containers: list[cst.CSTNode] = [node.value]
        if isinstance(node.value, cst.Name):
            containers += [v for v in self.bindings.get(nfkc(node.value.value), ()) if not isinstance(v, str)]
        for container in containers:
            if isinstance(container, cst.Tuple | cst.List | cst.Set):
                for element in container.elements:
                    out |= self.resolve(element.value, depth + 1)
            elif isinstance(container, cst.Dict):
                for element in container.elements:
                    if isinstance(element, cst.DictElement):
                        out |= self.resolve(element.value, depth + 1)
        bases = self.resolve(node.value, depth + 1)
        if "sys.modules" in bases and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            key = self.const_str(node.slice[0].slice.value)
            if key is not None:
                out.add(key)
        out |= {f"{q}[]" for q in bases}
        return out

    def const_str(self, node: cst.CSTNode | None, depth: int = 0) -> str | None:
        """The value of a string expression known statically (literals, concatenation, joins), else None."""
        if node is None or depth > 16:
            return None
        if isinstance(node, cst.SimpleString):
            key = id(node)
            if key not in self._literals:  # evaluated_value compiles the literal: once per node
                try:
                    value = node.evaluated_value
                except Exception:  # noqa: BLE001 - libcst evaluates with literal_eval; any failure means unknown
                    value = None
                self._literals[key] = value if isinstance(value, str) else None
            return self._literals[key]
        if isinstance(node, cst.ConcatenatedString):
            parts = [self.const_str(p, depth + 1) for p in _concat_parts(node)]
            return None if any(p is None for p in parts) else "".join(parts)  # type: ignore[arg-type]
        if isinstance(node, cst.FormattedString):
            out = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    out.append(part.value.replace("{{", "{").replace("}}", "}"))
                elif isinstance(part, cst.FormattedStringExpression):
                    value = self.const_str(part.expression, depth + 1)
                    if value is None:
                        value = self._const_number(part.expression)
                    if value is None:
                        return None
                    out.append(value)
            return "".join(out)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, right = self.const_str(node.left, depth + 1), self.const_str(node.right, depth + 1)
            return None if left is None or right is None else left + right
        if isinstance(node, cst.Name):
            values = self.bindings.get(nfkc(node.value), [])
            found = {None if isinstance(v, str) else self.const_str(v, depth + 1) for v in values}
            return found.pop() if len(found) == 1 else None  # known only if every binding agrees
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "join"
            and len(node.args) == 1
        ):
            sep = self.const_str(node.func.value, depth + 1)
            items = node.args[0].value
            if sep is not None and isinstance(items, cst.List | cst.Tuple):
                parts = [self.const_str(e.value, depth + 1) for e in items.elements]
                if all(p is not None for p in parts):
                    return sep.join(parts)  # type: ignore[arg-type]
        return None

    def _const_number(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Integer | cst.Float):
            return node.value
        if isinstance(node, cst.Name):
            values = self.bindings.get(nfkc(node.value), [])
            found = {v.value if isinstance(v, cst.Integer | cst.Float) else None for v in values}
            return found.pop() if len(found) == 1 else None
        return None

    # ----------------------------------------------------------------------------------------- rules

    def _find(
        self,
        rule: str,
        message: str,
        node: cst.CSTNode | None = None,
        line: int | None = None,
        file: str | None = None,
    ) -> None:
        self.findings.append(Finding(rule, message, node, line, file or self.file))

    def _check_name(self, qual: str, node: cst.CSTNode, ctx: _Ctx) -> None:
        head, called, tail = qual.partition("()")
        head = head.replace("[]", "")
        # A call's own name is checked where the call is written; a value it returned is checked by its methods.
        rule = "" if called else lookup(head)
        if rule and not (ctx.jit and rule.startswith("substitution")):
            what = head.removeprefix("builtins.")
            self._find(rule, f"uses {what}; {_ADVICE.get(rule, 'remove it')}", node)
        if not self.strict or ctx.jit:
            return
        methods = [m for m in tail.replace("()", ".").replace("[]", ".").split(".") if m]
        torch_value = head.startswith("torch.") and not head.startswith(
            ("torch.utils.cpp_extension", "torch.ops.")
        )
        if (
            head.startswith("torch.Tensor.")
            and head.rsplit(".", 1)[-1] in TENSOR_COMPUTE_METHODS | _ARITHMETIC_DUNDERS
        ):
            self._find(
                "substitution.torch-compute",
                f"uses {head}; under strict the compute must be in your kernel",
                node,
            )
        if torch_value:
            for m in methods:
                if m in TENSOR_COMPUTE_METHODS:
                    self._find(
                        "substitution.torch-compute",
                        f"calls .{m}() on a tensor; under strict the compute must be in your kernel",
                        node,
                    )

    def _check_references(self) -> None:
        for node, ctx in self.references:
            name = dotted(node)
            if name is not None:
                if any(
                    part.startswith("__") and part.endswith("__") and part in _DUNDERS
                    for part in name.split(".")
                ):
                    self._find("harness.dunder", f"uses {name}; dunder internals are off limits", node)
                elif any(part in _FRAME_ATTRIBUTES for part in name.split(".")[1:]):
                    self._find(
                        "harness.dunder", f"uses {name}; frame and code internals are off limits", node
                    )
            elif isinstance(node, cst.Attribute):
                attr = nfkc(node.attr.value)
                if attr in _DUNDERS or attr in _FRAME_ATTRIBUTES or attr in _SUBCLASS_ATTRIBUTES:
                    self._find("harness.dunder", f"uses .{attr}; dunder internals are off limits", node)
            for qual in self.resolve(node):
                self._check_name(qual, node, ctx)

    def _check_classes(self) -> None:
        """Tensor subclasses and torch-function overrides can make outputs lie about their values."""
        for node in self.classes:
            bases = {q for arg in node.bases for q in self.resolve(arg.value)}
            body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
            methods = {nfkc(s.name.value) for s in body if isinstance(s, cst.FunctionDef)}
            if (
                any(q.startswith(("torch.Tensor", "torch._C")) for q in bases)
                or methods & _SUBCLASS_ATTRIBUTES
            ):
                self._find(
                    "harness.dunder",
                    f"class {nfkc(node.name.value)} subclasses torch.Tensor or overrides torch functions; "
                    "outputs must be plain tensors",
                    node,
                )

    def _check_assignments(self) -> None:
        for target, _stmt, _ctx in self.assign_targets:
            base = target.value
            quals = {q for q in self.resolve(base) if not q.startswith("<local>")}
            if isinstance(target, cst.Attribute):
                full = {f"{q}.{nfkc(target.attr.value)}" for q in quals}
            else:
                full = quals
            if any(q.startswith("torch.backends") for q in full):
                self._find(
                    "precision.global-flag",
                    "assigns a torch.backends flag; this changes the reference's numerics too: remove it",
                    target,
                )
            elif any(q.startswith("os.environ") for q in full):
                self._find("escape.os", "writes to os.environ; environment writes are not allowed", target)
            elif any(q.startswith("sys.modules") for q in full):
                self._find("harness.introspection", "writes to sys.modules; remove it", target)
            elif quals and not all(q.endswith(("()", "[]")) for q in quals):
                names = ", ".join(sorted(full))
                self._find(
                    "harness.module-assign",
                    f"assigns to {names}: patching an imported module's attributes is not allowed",
                    target,
                )

    def _check_calls(self) -> None:
        for node, ctx in self.calls:
            funcs = self.resolve(node.func)
            args = [a for a in node.args if a.keyword is None and not a.star]
            if funcs & {"builtins.getattr", "builtins.hasattr", "builtins.setattr", "builtins.delattr"}:
                literal = len(args) >= 2 and self.const_str(args[1].value) is not None
                receiver = self.resolve(args[0].value) if args else frozenset()
                module_receiver = any(not q.startswith("<local>") and "()" not in q for q in receiver)
                if not literal and (self.strict or module_receiver):
                    self._find(
                        "obfuscation.dynamic-attribute",
                        "getattr/setattr/delattr/hasattr with a name built at run time; name the attribute "
                        "directly",
                        node,
                    )
                if funcs & {"builtins.setattr", "builtins.delattr"}:
                    self._find(
                        "harness.setattr",
                        "setattr/delattr rewrites objects by name; assign directly to "
                        "your own objects instead",
                        node,
                    )
                elif literal and funcs & {"builtins.getattr"}:
                    attr = nfkc(self.const_str(args[1].value) or "")
                    if attr in _DUNDERS or attr in _FRAME_ATTRIBUTES:
                        self._find("harness.dunder", f"getattr(..., {attr!r}) reaches internals", node)
            # getattr with a literal, attrgetter(...)(obj) and __import__("m") name something: check that.
            named_by_call = funcs & {
                "builtins.getattr",
                "builtins.__import__",
                "importlib.import_module",
            } or (isinstance(node.func, cst.Call) and "operator.attrgetter" in self.resolve(node.func.func))
            if named_by_call:
                for qual in self.resolve(node):
                    self._check_name(qual, node, ctx)
            if funcs & {"operator.attrgetter", "operator.methodcaller"}:
                if self.strict or not (args and self.const_str(args[0].value) is not None):
                    self._find(
                        "obfuscation.dynamic-attribute",
                        "attrgetter/methodcaller access attributes by name; call the method directly",
                        node,
                    )
            if any(q == LOAD_INLINE for q in funcs):
                self._check_load_inline(node)
            if self.strict and not ctx.jit and isinstance(node.func, cst.Attribute):
                self._check_tensor_method(node, ctx)

    def _check_tensor_method(self, node: cst.Call, ctx: _Ctx) -> None:
        """Strict: a method call that computes with torch. On run's own parameters and on values torch made,
        only the allowlist of views, copies and metadata passes; on unknown objects, known compute does not."""
        method = nfkc(node.func.attr.value)
        receiver = self.resolve(node.func.value)
        if any(
            "()" not in q or not q.startswith(("torch.", "builtins.")) or "cpp_extension" in q
            for q in receiver
        ):
            return  # a module or class (checked by the name tables), a local object or an extension
        entry = self.functions.get(self.entry)
        is_input = (
            entry is not None
            and ctx.func is entry
            and isinstance(node.func.value, cst.Name)
            and nfkc(node.func.value.value) in entry.params
        )
        if is_input or any(q.split("()")[0] in TENSOR_FACTORIES for q in receiver if "()" in q):
            refused = method not in TENSOR_ALLOWED_METHODS
        else:
            refused = (
                method in TENSOR_COMPUTE_METHODS
                or method.rstrip("_") in TENSOR_COMPUTE_METHODS
                or method in _ARITHMETIC_DUNDERS
                or method in _HOST_METHODS
            )
        if refused:
            self._find(
                "substitution.torch-compute",
                f".{method}() computes with torch (or on the host); under strict only views, copies and "
                "metadata are allowed outside your kernel",
                node,
            )

    def _check_load_inline(self, node: cst.Call) -> None:
        names = (
            "name",
            "cpp_sources",
            "cuda_sources",
            "functions",
            "extra_cflags",
            "extra_cuda_cflags",
            "extra_ldflags",
            "extra_include_paths",
            "build_directory",
        )
        given: dict[str, cst.BaseExpression] = {}
        for index, arg in enumerate(node.args):
            if arg.star:
                self._find(
                    "obfuscation.unresolved-source",
                    "load_inline gets *args/**kwargs; pass every argument by keyword, literally",
                    node,
                )
            elif arg.keyword is not None:
                given[nfkc(arg.keyword.value)] = arg.value
            elif index < len(names):
                given[names[index]] = arg.value
        if "build_directory" in given:
            self._find(
                "escape.filesystem",
                "load_inline(build_directory=...) writes outside solgym's private build cache; drop it",
                node,
            )
        for key in ("cpp_sources", "cuda_sources", "extra_cflags", "extra_cuda_cflags", "extra_ldflags"):
            if key not in given:
                continue
            values = self._const_list(given[key])
            if values is None:
                self._find(
                    "obfuscation.unresolved-source",
                    f"load_inline({key}=...) is not a literal string or list of literals; the analyser "
                    "must see every source and flag",
                    node,
                )
                continue
            if key.startswith("extra_") and key != "extra_ldflags":
                for flag in values:
                    if flag.startswith("-D") and len(flag) > 2:
                        name, _, value = flag[2:].partition("=")
                        self.cxx_defines[name] = value or "1"
                    if flag.startswith(("-include", "--include", "@", "-imacros", "--pre-include")):
                        self._find("escape.filesystem", f"compiler flag {flag} reads a file; drop it", node)
            elif key == "extra_ldflags":
                for f in cxx.ldflag_findings(values, self.strict):
                    self._find(f.rule, f.message, node)

    def _const_list(self, node: cst.BaseExpression, depth: int = 0) -> list[str] | None:
        """Every string `node` may hold (a name bound several times gives each value), or None if any is
        not known statically."""
        single = self.const_str(node)
        if single is not None:
            return [single]
        if isinstance(node, cst.Name) and depth < 8:
            values = self.bindings.get(nfkc(node.value), [])
            out: list[str] = []
            for value in values:
                strings = None if isinstance(value, str) else self._const_list(value, depth + 1)
                if strings is None:
                    return None
                out += strings
            return out or None
        if isinstance(node, cst.List | cst.Tuple):
            out = []
            for element in node.elements:
                value = self.const_str(element.value)
                if value is None:
                    return None
                out.append(value)
            return out
        return None

    # ---------------------------------------------------------------------------------------- caching

    def _state_root(self, node: cst.CSTNode) -> str | None:
        while True:
            if isinstance(node, cst.Name):
                name = nfkc(node.value)
                return name if name in self.state else None
            if isinstance(node, cst.Attribute):
                if isinstance(node.value, cst.Name):
                    owner = f"{nfkc(node.value.value)}.{nfkc(node.attr.value)}"
                    if owner in self.state:
                        return owner
                node = node.value
            elif isinstance(node, cst.Subscript):
                node = node.value
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                node = node.func.value
            else:
                return None

    def _identity_in(self, node: cst.CSTNode, func: _Function | None, depth: int = 0) -> str | None:
        """Why `node` (a cache key) identifies a tensor by address or content, or None for shape-like keys."""
        stack: list[cst.CSTNode] = [node]
        params = func.tensor_params if func is not None else set()
        while stack:
            n = stack.pop()
            if isinstance(n, cst.Call):
                if isinstance(n.func, cst.Attribute) and nfkc(n.func.attr.value) in IDENTITY_METHODS:
                    return f".{nfkc(n.func.attr.value)}()"
                funcs = self.resolve(n.func)
                hit = funcs & {"builtins.id", "builtins.hash"} or {
                    q for q in funcs if q.startswith("hashlib")
                }
                if hit:
                    return f"{sorted(hit)[0]}()"
            if isinstance(n, cst.Attribute):
                if nfkc(n.attr.value) in SHAPE_ATTRIBUTES:
                    continue
                if nfkc(n.attr.value) in IDENTITY_METHODS:
                    return f".{nfkc(n.attr.value)}"
                stack.append(n.value)
                continue
            if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute):
                if nfkc(n.func.attr.value) in SHAPE_ATTRIBUTES:
                    continue
            if isinstance(n, cst.Name):
                name = nfkc(n.value)
                if name in params:
                    return f"the tensor {name} itself"
                if func is not None and depth < 3:
                    for value in func.local.get(name, ()):
                        why = self._identity_in(value, func, depth + 1)
                        if why:
                            return why
                continue
            for name in _fields(n):
                stack.extend(_children(n, name))
        return None

    def _closure_state(self) -> None:
        """Containers bound in one function and used by another (a closure) persist like module state."""
        functions = list(self.functions.values())
        for owner in functions:
            for name, values in owner.local.items():
                if any(self._is_container(v) for v in values) and any(
                    f is not owner and name in f.loads and name not in f.local for f in functions
                ):
                    self.state.add(name)

    def _check_caching(self) -> None:
        self._closure_state()
        local_classes = {nfkc(node.name.value) for node in self.classes}
        for name in self.instances:
            if any(
                isinstance(v, cst.Call)
                and isinstance(v.func, cst.Name)
                and nfkc(v.func.value) in local_classes
                for v in self.bindings.get(name, ())
            ):
                self.state.add(name)  # an instance's attributes persist across calls like module state
        if not self.state:
            self._check_functools()
            return
        for node, ctx in self.subscripts:
            root = self._state_root(node.value)
            if root is None or ctx.jit:
                continue
            for element in node.slice:
                why = self._identity_in(element.slice, ctx.func)
                if why:
                    self._find(
                        "caching.identity-key",
                        f"module-level {root} is keyed on {why}; key caches on shapes and dtypes only",
                        node,
                    )
        for node, ctx in self.calls:
            if ctx.jit or not isinstance(node.func, cst.Attribute) or not node.args:
                continue
            method = nfkc(node.func.attr.value)
            root = self._state_root(node.func.value)
            if root is None:
                continue
            if method in ("get", "setdefault", "pop", "__getitem__", "__contains__", "__setitem__"):
                why = self._identity_in(node.args[0].value, ctx.func)
                if why:
                    self._find(
                        "caching.identity-key",
                        f"module-level {root} is keyed on {why}; key caches on shapes and dtypes only",
                        node,
                    )
            if method in ("append", "add", "setdefault", "update", "__setitem__", "insert", "extend"):
                stored = node.args[-1].value
                self._check_store(root, stored, node, ctx)
        for node, ctx in self.comparisons:
            for target in node.comparisons:
                if isinstance(target.operator, cst.In | cst.NotIn):
                    root = self._state_root(target.comparator)
                    why = root and self._identity_in(node.left, ctx.func)
                    if why:
                        self._find(
                            "caching.identity-key",
                            f"module-level {root} is keyed on {why}; key caches on shapes and dtypes only",
                            node,
                        )
        for target, stmt, ctx in self.assign_targets:
            if (
                isinstance(stmt, cst.Assign | cst.AnnAssign)
                and stmt.value is not None
                and ctx.func is not None
            ):
                root = self._state_root(target)
                if root is not None:
                    self._check_store(root, stmt.value, target, ctx)
        entry = self.functions.get(self.entry)
        for ret in entry.returns if entry is not None else ():
            root = self._reads_state(ret, entry)
            if root:
                self._find(
                    "caching.state-result",
                    f"{self.entry} returns a value read from module-level {root}; compute outputs on every "
                    "call",
                    ret,
                )
        for node, ctx in self.calls:
            if ctx.func is None or ctx.jit or not isinstance(node.func, cst.Attribute):
                continue
            if nfkc(node.func.attr.value) in ("copy_", "set_", "__setitem__") and node.args:
                root = self._reads_state(node.args[-1].value, ctx.func)
                if root:
                    self._find(
                        "caching.state-result",
                        f"copies a value read from module-level {root} into a tensor; compute it every call",
                        node,
                    )
        self._check_functools()
        self._check_global_outputs()

    def _check_global_outputs(self) -> None:
        for target, stmt, ctx in self.assign_targets:
            if isinstance(target, cst.Subscript) and ctx.func is not None and isinstance(stmt, cst.Assign):
                root = self._reads_state(stmt.value, ctx.func)
                if root and self._state_root(target) is None:
                    self._find(
                        "caching.state-result",
                        f"writes a value read from module-level {root} into an output; compute it every call",
                        target,
                    )

    def _check_store(self, root: str, stored: cst.BaseExpression, node: cst.CSTNode, ctx: _Ctx) -> None:
        func = ctx.func
        if func is None:
            return
        returned = set()
        for ret in func.returns:
            returned |= {nfkc(n.value) for n in _names_in(ret)}
        for n in _names_in(stored):
            name = nfkc(n.value)
            if name in returned or name in func.tensor_params:
                self._find(
                    "caching.state-result",
                    f"stores {name} (an input or a returned result) in module-level {root}; "
                    "outputs must be computed on every call",
                    node,
                )
                return

    def _reads_state(self, node: cst.CSTNode, func: _Function, depth: int = 0) -> str | None:
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, cst.Call):
                passes_input = any(
                    isinstance(a.value, cst.Name) and nfkc(a.value.value) in func.params for a in n.args
                )
                if isinstance(n.func, cst.Attribute) and (
                    passes_input
                    or nfkc(n.func.attr.value)
                    not in TENSOR_VIEW_METHODS | {"get", "pop", "__getitem__", "setdefault"}
                ):
                    stack.extend(a.value for a in n.args)
                    continue
                if isinstance(n.func, cst.Name) and depth < 3:
                    for helper in self._callees(nfkc(n.func.value)):
                        if helper is not func and not helper.jit:
                            for ret in helper.returns:
                                root = self._reads_state(ret, helper, depth + 1)
                                if root:
                                    return root
                if isinstance(n.func, cst.Subscript | cst.Name):
                    stack.extend(a.value for a in n.args)
                    continue
            if isinstance(n, cst.Name | cst.Attribute | cst.Subscript | cst.Call):
                root = self._state_root(n)
                if root is not None and not (isinstance(n, cst.Name) and nfkc(n.value) in func.params):
                    return root
            if isinstance(n, cst.Name) and depth < 3:
                for value in func.local.get(nfkc(n.value), ()):
                    root = self._reads_state(value, func, depth + 1)
                    if root:
                        return root
                continue
            if isinstance(n, cst.Lambda | cst.FunctionDef):
                continue
            for name in _fields(n):
                stack.extend(_children(n, name))
        return None

    def _callees(self, name: str) -> list[_Function]:
        """Local functions a call of `name` may run: a def of that name, or the function a local factory
        returns when `name` was bound to the factory's result (`_f = make(); _f(x)`)."""
        out = [self.functions[name]] if name in self.functions else []
        for value in self.bindings.get(name, ()):
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
                factory = self.functions.get(nfkc(value.func.value))
                for ret in factory.returns if factory is not None else ():
                    if isinstance(ret, cst.Name) and nfkc(ret.value) in self.functions:
                        out.append(self.functions[nfkc(ret.value)])
        return out

    def _check_functools(self) -> None:
        cached = {}
        for name, decorator, _ctx in self.decorated:
            target = (
                decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
            )
            if self.resolve(target) & FUNCTOOLS_CACHES:
                cached[name] = decorator
        for name, decorator in cached.items():
            if name == self.entry:
                self._find(
                    "caching.functools",
                    f"the entry point {name} is memoised by a functools cache; remove the decorator",
                    decorator,
                )
                continue
            for func in self.functions.values():
                for callee, call, _guards in func.calls:
                    if callee != name:
                        continue
                    passed = {nfkc(n.value) for a in call.args for n in _bare_names(a.value)}
                    if passed & (func.tensor_params | ({*func.params} if func.name == self.entry else set())):
                        self._find(
                            "caching.functools",
                            f"{name} is memoised by a functools cache and called with the tensors of "
                            f"{func.name}; key caches on shapes and dtypes only",
                            decorator,
                        )
                        break

    # -------------------------------------------------------------------------------- fallbacks, decoys

    def _launchers(self) -> set[str]:
        launch = {name for name, f in self.functions.items() if f.launches or self._extension_calls(f)}
        changed = True
        while changed:
            changed = False
            for name, f in self.functions.items():
                if name not in launch and any(c in launch for c, _, _ in f.calls):
                    launch.add(name)
                    changed = True
        return launch

    def _extension_calls(self, func: _Function) -> list[tuple[cst.Call, tuple[cst.CSTNode, ...]]]:
        """Calls in `func` of a function of a load_inline extension (C++ kernel launches)."""
        return [
            (node, guards)
            for node, guards in func.method_calls
            if any(q.startswith(LOAD_INLINE + "()") for q in self.resolve(node.func))
        ]

    def _check_fallbacks(self) -> None:
        if not self.guards:
            return
        launchers = self._launchers()
        guarded: set[int] = set()
        for func in self.functions.values():
            events = list(func.launches) + self._extension_calls(func)
            events += [(call, guards) for callee, call, guards in func.calls if callee in launchers]
            for _node, guards in events:
                guarded |= {id(g) for g in guards}
        for node, ctx in self.guards:
            if id(node) in guarded and not ctx.jit:
                kind = "try/except" if isinstance(node, cst.Try | cst.TryStar) else "contextlib.suppress"
                self._find(
                    "fallback.except-launch",
                    f"a {kind} wraps a kernel launch; let launch errors surface instead of falling back",
                    node,
                )

    def _check_decoys(self) -> None:
        if not self.jit_defs:
            return
        for index, names in self.stores.items():
            loaded = self.refs.get(f"<stmt {index}>", set())
            for name in names:
                self.refs.setdefault(name, set()).update(loaded)
        reached: set[str] = set()
        frontier = [self.entry, *self.roots]
        while frontier:
            name = frontier.pop()
            if name in reached:
                continue
            reached.add(name)
            frontier.extend(self.refs.get(name, ()))
        for name, top, node in self.jit_defs:
            if top not in reached and name not in reached:
                self._find(
                    "decoy.unreachable-kernel",
                    f"Triton kernel {name} is never reached from {self.entry}; delete it or launch it",
                    node,
                )


def _is_main_guard(stmt: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":` without else: code that never runs when the harness imports the action."""
    if not isinstance(stmt, cst.If) or stmt.orelse is not None:
        return False
    test = stmt.test
    if not (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Equal)
    ):
        return False
    left, right = test.left, test.comparisons[0].comparator
    return (
        isinstance(left, cst.Name)
        and nfkc(left.value) == "__name__"
        and isinstance(right, cst.SimpleString)
        and right.evaluated_value == "__main__"
    )


def _concat_parts(node: cst.ConcatenatedString) -> list[cst.BaseExpression]:
    parts: list[cst.BaseExpression] = []
    stack: list[cst.BaseExpression] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.ConcatenatedString):
            stack.append(n.right)
            stack.append(n.left)
        else:
            parts.append(n)
    return parts


def _target_leaves(target: cst.CSTNode) -> Iterator[cst.CSTNode]:
    if isinstance(target, cst.Tuple | cst.List):
        for element in target.elements:
            yield from _target_leaves(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _target_leaves(target.value)
    else:
        yield target


def _names_in(node: cst.CSTNode) -> Iterator[cst.Name]:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            yield n
            continue
        if isinstance(n, cst.Attribute):
            stack.append(n.value)
            continue
        for name in _fields(n):
            stack.extend(_children(n, name))


def _bare_names(node: cst.CSTNode) -> Iterator[cst.Name]:
    """Names used as values themselves (not as the object of an attribute or method call)."""
    if isinstance(node, cst.Name):
        yield node
    elif isinstance(node, cst.Tuple | cst.List):
        for element in node.elements:
            yield from _bare_names(element.value)


_CXX_MARKERS = (
    "__global__",
    "#include",
    "<<<",
    "torch::",
    "at::",
    "PYBIND11_MODULE",
    'extern "C"',
    "__device__",
    "cudaStream",
    "#define",
    "asm(",
    "asm volatile",
)


_INSTALL = re.compile(r"^(pip3?|ensurepip|conda|uv)$|\b(pip3?|conda|uv pip)\s+install\b")


def _looks_like_cxx(text: str) -> bool:
    return any(marker in text for marker in _CXX_MARKERS)


_BUILTINS = frozenset(
    (
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "vars",
        "locals",
        "setattr",
        "delattr",
        "getattr",
        "hasattr",
        "print",
        "breakpoint",
        "input",
        "id",
        "hash",
        "bytes",
        "bytearray",
        "memoryview",
        "dir",
        "type",
        "object",
        "super",
        "exit",
        "quit",
        "help",
        "__build_class__",
        "__builtins__",
        "__loader__",
        "__spec__",
    )
)
_DUNDERS = frozenset(
    (
        "__code__",
        "__globals__",
        "__dict__",
        "__class__",
        "__bases__",
        "__base__",
        "__mro__",
        "__subclasses__",
        "__builtins__",
        "__closure__",
        "__defaults__",
        "__kwdefaults__",
        "__getattribute__",
        "__setattr__",
        "__delattr__",
        "__reduce__",
        "__reduce_ex__",
        "__import__",
        "__loader__",
        "__spec__",
        "__self__",
        "__func__",
        "__wrapped__",
        "__init_subclass__",
        "__class_getitem__",
        "__set_name__",
        "__getattr__",
        "__del__",
        "__setstate__",
        "__getstate__",
        "__module__",
        "__qualname__",
        "__annotations__",
        "__traceback__",
    )
)
_ARITHMETIC_DUNDERS = frozenset(
    f"__{op}__"
    for base in (
        "add",
        "sub",
        "mul",
        "matmul",
        "truediv",
        "floordiv",
        "mod",
        "pow",
        "and",
        "or",
        "xor",
        "lshift",
        "rshift",
    )
    for op in (base, "r" + base, "i" + base)
) | frozenset(("__neg__", "__abs__", "__invert__"))
# Methods that move tensor data to Python or NumPy (host compute under strict).
_HOST_METHODS = frozenset(("tolist", "numpy", "cpu", "__array__", "tobytes"))
# Tensor attributes that make or unwrap subclasses (outputs must be plain tensors).
_SUBCLASS_ATTRIBUTES = frozenset(
    ("as_subclass", "_make_subclass", "_make_wrapper_subclass", "__torch_function__", "__torch_dispatch__")
)
_FRAME_ATTRIBUTES = frozenset(
    (
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "f_code",
        "gi_frame",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
        "func_globals",
    )
)

_ADVICE: Mapping[str, str] = {
    "timing.stream": "launch on the current stream (torch.cuda.current_stream()) instead",
    "timing.event": "the harness times your kernel; remove timers and profilers",
    "timing.cuda-graph": "launch the kernel directly on every call",
    "timing.fork": "run the work synchronously inside run",
    "timing.concurrency": "do all work inside run, on the calling thread",
    "timing.signal": "remove hooks and handlers",
    "harness.introspection": "actions may not inspect or modify the interpreter or the harness",
    "harness.globals": "use ordinary names",
    "harness.op-override": "define your own op (torch.library.custom_op) or call your kernel directly",
    "harness.rng": "the harness owns the random state; remove it",
    "escape.os": "only environment reads (os.environ.get, os.getenv) are allowed",
    "escape.process": "actions may not start processes",
    "escape.network": "actions may not use the network",
    "escape.native": "build native code with torch.utils.cpp_extension.load_inline",
    "escape.serialization": "actions may not load serialized objects",
    "escape.filesystem": "actions may not read or write files",
    "escape.install": "actions may not install or locate packages",
    "dynamic.exec": "write the code directly",
    "dynamic.payload": "write the code directly",
    "substitution.torch-compute": "under strict the compute must be in your Triton/CUDA kernel (torch may only "
    "allocate, view and describe tensors)",
    "substitution.torch-compile": "under strict write the kernel yourself",
    "substitution.library": "under strict write the kernel yourself",
    "substitution.reference": "the reference is not available to actions",
    "precision.global-flag": "global precision flags change the reference too; remove it",
    "output.stdio": "actions may not write to stdout/stderr",
}


def lines_of(
    module: cst.Module,
    tree: ast.Module,
    source: str,
    where: Mapping[int, tuple[int, int]],
    nodes: Iterable[cst.CSTNode],
) -> dict[int, int]:
    """Start lines of `nodes` (by id), without libcst's PositionProvider (a whole-module codegen that costs
    more than the analysis): `ast` gives each top-level statement's line range, and the node's own code is
    searched for inside it, in visit order so repeated expressions map to successive lines."""
    ranges = _statement_ranges(module, tree)
    lines = source.splitlines()
    cursor: dict[tuple[int, str], int] = {}
    out: dict[int, int] = {}
    for node in sorted(nodes, key=lambda n: where.get(id(n), (0, 0))[1]):
        stmt = where.get(id(node), (0, 0))[0]
        start, end = ranges[stmt] if stmt < len(ranges) else (1, len(lines))
        snippet = _first_code_line(module.code_for_node(_header(node)))
        key = (stmt, snippet)
        line = start
        if snippet:
            pattern = re.compile(
                r"(?<![\w.])" + re.escape(snippet) if snippet[:1].isidentifier() else re.escape(snippet)
            )
            for number in range(max(start, cursor.get(key, start)), end + 1):
                if number - 1 < len(lines) and pattern.search(lines[number - 1]):
                    line = number
                    cursor[key] = number + 1 if isinstance(node, cst.Name | cst.Attribute) else number
                    break
        out[id(node)] = line
    return out


_PASS_BLOCK = cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])])


def _header(node: cst.CSTNode) -> cst.CSTNode:
    """The node with its indented body replaced by `pass`: only its first line is needed, and generating
    the code of a whole function or try block would cost as much as the analysis."""
    body = getattr(node, "body", None)
    if isinstance(body, cst.BaseSuite) and not isinstance(node, cst.Module):
        changes: dict = {"body": _PASS_BLOCK}
        for name in ("handlers", "orelse", "finalbody"):
            if hasattr(node, name):
                changes[name] = () if name == "handlers" else None
        try:
            return node.with_changes(**changes)
        except Exception:  # noqa: BLE001 - validation of an unusual node shape; fall back to the node itself
            return node
    return node


def _first_code_line(code: str) -> str:
    for raw in code.splitlines():
        text = raw.strip()
        if text and not text.startswith("#"):
            return text[:80]
    return ""


def _statement_ranges(module: cst.Module, tree: ast.Module) -> list[tuple[int, int]]:
    """(first, last) line of each of libcst's top-level statements, from the `ast` of the same source."""
    ranges = []
    body = iter(tree.body)
    for stmt in module.body:
        count = len(stmt.body) if isinstance(stmt, cst.SimpleStatementLine) else 1
        group = [s for _, s in zip(range(count), body, strict=False)]
        if not group:
            ranges.append((1, 1))
            continue
        first = min([group[0].lineno, *(d.lineno for d in getattr(group[0], "decorator_list", []))])
        ranges.append((first, max(getattr(s, "end_lineno", s.lineno) or s.lineno for s in group)))
    return ranges


__all__ = ["Analyser", "Finding", "dotted", "lines_of", "nfkc"]
