"""Everything checked before a runbook runs, all errors at once with file:line:col.

Beyond the schema: step ids, every ``uses:`` names a registered action or a
fragment (did-you-mean on typos), every ``with:`` matches the action's
signature (unknown keys, missing required ones, types of literal values), and
every template parses and reads only names that exist at that point: declared
inputs, earlier steps' outputs, env and run.
"""

from __future__ import annotations

from typing import Any, Callable

from erpops.errors import Diagnostic, InvalidFile
from erpops.runbook.loader import LoadedRunbook
from erpops.runbook.templating import ROOTS, TemplateError, condition_template, is_template, references
from erpops.yamlsrc import suggest

FRAGMENT = "runbook:"


def check(rb: LoadedRunbook, *, load_fragment: Callable[[str], LoadedRunbook] | None = None,
          _stack: tuple[str, ...] = ()) -> None:
    """Raise InvalidFile listing every problem of ``rb`` (and of the fragments it uses)."""
    diags = diagnostics(rb, load_fragment=load_fragment, stack=_stack)
    if diags:
        raise InvalidFile(diags, what=str(rb.path), hint="the runbook reference is in docs/runbooks.md; "
                          "actions: erpops runbook actions")


def diagnostics(rb: LoadedRunbook, *, load_fragment=None, stack: tuple[str, ...] = ()) -> list[Diagnostic]:
    from erpops.actions.registry import load_actions
    from erpops.runbook import loader

    load_fragment = load_fragment or loader.load
    actions = load_actions()
    model, doc = rb.model, rb.doc
    out: list[Diagnostic] = []
    inputs = set(model.inputs)

    for name, spec in model.inputs.items():
        if spec.default is not None:
            try:
                from erpops.runbook.inputs import coerce

                coerce(name, spec, spec.default)
            except ValueError as exc:
                out.append(doc.diagnostic(("inputs", name, "default"), str(exc)))

    seen: dict[str, int] = {}
    for i, step in enumerate(model.steps):
        loc = ("steps", i)
        if step.id is None:
            out.append(doc.diagnostic(loc, "missing required key 'id' (steps are named so that "
                                      "steps.<id>.outputs and resume can find them)", key=False))
        elif step.id in seen:
            out.append(doc.diagnostic(loc + ("id",), f"duplicate step id {step.id!r} (first used by steps[{seen[step.id]}])"))
        else:
            seen[step.id] = i
        earlier = [s.id for s in model.steps[:i] if s.id]
        out += _check_step(rb, step, loc, actions, inputs, earlier, load_fragment, stack)

    all_ids = [s.id for s in model.steps if s.id]
    for i, step in enumerate(model.on_failure):
        loc = ("on_failure", i)
        if step.id is not None and (step.id in seen or step.id in [s.id for s in model.on_failure[:i]]):
            out.append(doc.diagnostic(loc + ("id",), f"duplicate step id {step.id!r}"))
        earlier = all_ids + [s.id for s in model.on_failure[:i] if s.id]
        out += _check_step(rb, step, loc, actions, inputs, earlier, load_fragment, stack)

    for key, value in model.outputs.items():
        out += _check_templates(rb, ("outputs", key), value, inputs, all_ids)
    return out


def _check_step(rb, step, loc, actions, inputs, earlier, load_fragment, stack) -> list[Diagnostic]:
    doc = rb.doc
    out: list[Diagnostic] = []
    if step.when is not None and isinstance(step.when, str):
        out += _check_templates(rb, loc + ("when",), condition_template(step.when), inputs, earlier)
    if step.confirm:
        out += _check_templates(rb, loc + ("confirm",), step.confirm, inputs, earlier)
    out += _check_templates(rb, loc + ("with",), step.with_, inputs, earlier)
    if step.timeout is not None and step.timeout <= 0:
        out.append(doc.diagnostic(loc + ("timeout",), "a timeout must be longer than 0s"))

    if step.risk and not step.is_fragment:
        from erpops.actions.registry import Risk

        spec = actions.get(step.uses)
        order = [Risk.READ, Risk.WRITE, Risk.DESTRUCTIVE]
        if spec and order.index(Risk(step.risk)) < order.index(spec.risk):
            out.append(doc.diagnostic(loc + ("risk",), f"{step.uses} is {spec.risk.value}; a step may raise "
                                      "its risk, never lower it"))
    if step.is_fragment:
        for key, value in (("timeout", step.timeout), ("undo", step.undo)):
            if value is not None:
                out.append(doc.diagnostic(loc + (key,), f"{key}: does not apply to a fragment step; set it on "
                                          "the fragment's own steps", key=True))
        out += _check_fragment(rb, step, loc, load_fragment, stack)
    else:
        out += check_with(rb, loc, step.uses, step.with_, actions)
    if step.undo:
        if step.undo.uses.startswith(FRAGMENT):
            out.append(doc.diagnostic(loc + ("undo", "uses"), "an undo runs one action, not a fragment"))
        else:
            out += check_with(rb, loc + ("undo",), step.undo.uses, step.undo.with_, actions)
        # the step itself has completed when its undo runs: its outputs are readable
        out += _check_templates(rb, loc + ("undo", "with"), step.undo.with_, inputs, earlier + [step.id])
    return out


def check_with(rb, loc, uses, values, actions) -> list[Diagnostic]:
    """``with:`` against the action's signature; templated values are type-checked when rendered."""
    doc = rb.doc
    spec = actions.get(uses)
    if spec is None:
        near = suggest(uses, actions)
        msg = f"unknown action {uses!r}" + (f" — did you mean {near!r}?" if near else "; list them with: erpops runbook actions")
        return [doc.diagnostic(loc + ("uses",), msg)]
    out: list[Diagnostic] = []
    known = [p.name for p in spec.params]
    for key in values:
        if key not in known:
            near = suggest(key, known)
            msg = f"{uses} has no parameter {key!r}" + (f" — did you mean {near!r}?" if near else f"; it takes: {', '.join(known) or 'nothing'}")
            out.append(doc.diagnostic(loc + ("with", key), msg, key=True))
    for p in spec.params:
        if p.default is p.empty and p.name not in values:
            out.append(doc.diagnostic(loc + ("uses",), f"{uses} needs with.{p.name} ({_type(p)})"))
    literal = {k: v for k, v in values.items() if k in known and not _has_template(v)}
    for key, message in argument_errors(spec, literal):
        out.append(doc.diagnostic(loc + ("with", key), message))
    return out


def argument_errors(spec, values: dict) -> list[tuple[str, str]]:
    """(key, plain message) for every type/constraint error of ``values`` (missing keys ignored)."""
    from pydantic import ValidationError

    try:
        spec.validate(values)
        return []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    params = {p.name: p for p in spec.params}
    out: dict[str, str] = {}
    for err in errors:
        if err["type"] in ("missing", "extra_forbidden") or not err["loc"]:
            continue
        key = str(err["loc"][0])
        if key in out or key not in params:
            continue
        value = values.get(key)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"].endswith(("_type", "_parsing")) or len(err["loc"]) > 1 or "valid" in msg:
            msg = f"expected {_type(params[key])}, got {value!r}"
        out[key] = msg
    return list(out.items())


def _type(param) -> str:
    from erpops.actions.registry import type_name

    return type_name(param.annotation)


def _has_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return is_template(value)


def _check_fragment(rb, step, loc, load_fragment, stack) -> list[Diagnostic]:
    from erpops.errors import ErpopsError
    from erpops.runbook.inputs import coerce

    doc = rb.doc
    name = step.uses[len(FRAGMENT):]
    if name in stack or name == rb.name:
        return [doc.diagnostic(loc + ("uses",), f"fragment {name!r} uses itself (cycle: {' -> '.join(stack + (rb.name, name))})")]
    try:
        fragment = load_fragment(name)
        check(fragment, load_fragment=load_fragment, _stack=stack + (rb.name,))
    except InvalidFile as exc:
        first = exc.diagnostics[0].render() if exc.diagnostics else exc.message
        return [doc.diagnostic(loc + ("uses",), f"fragment {name!r} is invalid: {first}")]
    except ErpopsError as exc:
        return [doc.diagnostic(loc + ("uses",), f"unknown fragment {name!r}: {exc.message}"
                               + (f" — {exc.hint}" if exc.hint else ""))]
    out: list[Diagnostic] = []
    specs = fragment.model.inputs
    for key, value in step.with_.items():
        if key not in specs:
            near = suggest(key, specs)
            out.append(doc.diagnostic(loc + ("with", key), f"fragment {name!r} has no input {key!r}"
                                      + (f" — did you mean {near!r}?" if near else ""), key=True))
        elif not _has_template(value):
            try:
                coerce(key, specs[key], value)
            except ValueError as exc:
                out.append(doc.diagnostic(loc + ("with", key), str(exc)))
    for key, spec in specs.items():
        if spec.required and key not in step.with_:
            out.append(doc.diagnostic(loc + ("uses",), f"fragment {name!r} needs with.{key}"))
    return out


def _check_templates(rb, loc, value, inputs, earlier) -> list[Diagnostic]:
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _check_templates(rb, loc + (k,), v, inputs, earlier)]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _check_templates(rb, loc + (i,), v, inputs, earlier)]
    if not is_template(value):
        return []
    doc = rb.doc
    try:
        refs = references(value)
    except TemplateError as exc:
        return [doc.diagnostic(loc, f"invalid template: {exc.message}")]
    out: list[Diagnostic] = []
    for ref in refs:
        root = ref[0]
        if root not in ROOTS:
            near = suggest(root, ROOTS)
            out.append(doc.diagnostic(loc, f"template reads {root!r}, which does not exist; a template sees "
                                      f"{', '.join(ROOTS)}" + (f" — did you mean {near!r}?" if near else "")))
        elif root == "inputs" and len(ref) > 1 and ref[1] not in inputs:
            near = suggest(ref[1], inputs)
            out.append(doc.diagnostic(loc, f"template reads inputs.{ref[1]}, which is not declared under inputs:"
                                      + (f" — did you mean {near!r}?" if near else "")))
        elif root == "steps" and len(ref) > 1:
            if ref[1] not in earlier:
                out.append(doc.diagnostic(loc, f"template reads steps.{ref[1]}, which is not a step that ran before "
                                          f"this one (earlier steps: {', '.join(earlier) or 'none'})"))
            elif len(ref) > 2 and ref[2] != "outputs":
                out.append(doc.diagnostic(loc, f"template reads steps.{ref[1]}.{ref[2]}; a step exposes only "
                                          f"steps.{ref[1]}.outputs"))
        elif root == "run" and len(ref) > 1 and ref[1] not in ("id", "started_at", "operator", "tabletop"):
            out.append(doc.diagnostic(loc, f"template reads run.{ref[1]}; run has id, started_at, operator, tabletop"))
    return out
