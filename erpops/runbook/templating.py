"""Jinja2 templates in runbooks: sandboxed, strict, and nothing but the context.

A template sees ``inputs``, ``env`` (the inventory environment), ``steps.<id>.outputs``
and ``run`` (id, started_at, operator) — no globals, no attributes starting with
``_``, no file or module access. An undefined name is an error, never an empty
string. A value that is exactly one ``{{ expression }}`` keeps its type (a list
stays a list, an int an int); anything else renders to a string.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from erpops.errors import ErpopsError

ROOTS = ("inputs", "env", "steps", "run")
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class TemplateError(ErpopsError):
    """A template could not be parsed or rendered; ``kind`` is "template"."""

    kind = "template"


@lru_cache(maxsize=None)
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()  # no range/dict/lipsum/cycler/joiner/namespace: only the context
    return env


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render_value(value: Any, context: dict) -> Any:
    """Render every string inside ``value`` (recursing into lists and mappings)."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def render_string(text: str, context: dict) -> Any:
    if not is_template(text):
        return text
    from jinja2 import TemplateError as JinjaError
    from jinja2 import Undefined

    env = environment()
    m = _SINGLE.match(text)
    for ref in _cached_references(text):
        # Jinja adds names of its own to a render context (`self`, ...): only ours are readable
        if ref[0] not in ROOTS and ref[0] not in context:
            raise TemplateError(f"template {text.strip()!r}: {ref[0]!r} is not defined "
                                f"(a template sees only {', '.join(ROOTS)})")
    try:
        if m and "{{" not in m.group("expr") and "}}" not in m.group("expr"):
            result = env.compile_expression(m.group("expr"), undefined_to_none=False)(**context)
            if isinstance(result, Undefined):
                str(result)  # StrictUndefined raises here, naming the missing key
            return _plain(result)
        return env.from_string(text).render(**context)
    except JinjaError as exc:
        raise TemplateError(f"template {text.strip()!r}: {_explain(exc)}") from None
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise TemplateError(f"template {text.strip()!r}: {exc}") from None


def evaluate_condition(value: Any, context: dict) -> bool:
    """``when:`` is true unless it renders to false, "false", "no", "0", "" or none.
    A bare string without braces is an expression: ``when: inputs.verify``."""
    if value is None or isinstance(value, bool):
        return value is not False
    result = render_string(condition_template(value), context)
    if isinstance(result, str):
        return result.strip().lower() not in ("", "false", "no", "0", "none", "off")
    return bool(result)


def condition_template(value: str) -> str:
    return value if is_template(value) else "{{ " + value + " }}"


def _plain(value: Any) -> Any:
    # Placeholders and other context objects render as text once they leave Jinja.
    if hasattr(value, "__placeholder__"):
        return str(value)
    return value


def _explain(exc: Exception) -> str:
    msg = str(exc)
    m = re.match(r"'(.+?)' is undefined", msg)
    if m:
        return f"{m.group(1)!r} is not defined (a template sees only {', '.join(ROOTS)})"
    m = re.match(r"'(.+?)' has no attribute '(.+?)'", msg)
    if m:
        return f"{m.group(2)!r} is not defined in {m.group(1)}"
    return msg


# --- static analysis, for validation before anything runs --------------------


@lru_cache(maxsize=4096)
def _cached_references(text: str) -> tuple:
    return tuple(references(text))


def references(text: str) -> list[tuple[str, ...]]:
    """Every dotted path a template reads from its context, e.g.
    ("inputs", "tenant") or ("steps", "dump", "outputs", "id").
    Raises TemplateError on a syntax error or an unknown filter/test."""
    from jinja2 import TemplateError as JinjaError
    from jinja2 import nodes

    source = text
    m = _SINGLE.match(text)
    try:
        ast = environment().parse(source)
        environment().compile(source)  # unknown filters/tests are reported at compile time
    except JinjaError as exc:
        line = f" (line {exc.lineno} of the template)" if getattr(exc, "lineno", None) and "\n" in text else ""
        raise TemplateError(f"{exc.message}{line}") from None
    del m
    out: list[tuple[str, ...]] = []
    bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}

    def path_of(node) -> tuple[str, ...] | None:
        parts: list[str] = []
        while True:
            if isinstance(node, nodes.Getattr):
                parts.append(node.attr)
                node = node.node
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                parts.append(node.arg.value)
                node = node.node
            elif isinstance(node, nodes.Getitem):
                parts.clear()  # dynamic index: only the part before it is known
                node = node.node
            elif isinstance(node, nodes.Name):
                parts.append(node.name)
                return tuple(reversed(parts))
            else:
                return None

    seen_inner: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in seen_inner:
            continue
        # mark the inner nodes of this chain so that only the longest chain counts
        inner = node
        while isinstance(inner, (nodes.Getattr, nodes.Getitem)):
            inner = inner.node
            seen_inner.add(id(inner))
        path = path_of(node)
        if path and not (isinstance(node, nodes.Name) and node.ctx != "load") and path[0] not in bound:
            out.append(path)
    return out
