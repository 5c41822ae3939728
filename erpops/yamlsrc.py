"""YAML files read with source positions, and problems reported against them.

Config (inventory) and runbook loaders both go through here so that every
error names ``file:line:column`` and the key path, and all errors of a file
are reported at once (see ``erpops.errors.InvalidFile``).
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from erpops.errors import Diagnostic, InvalidFile

Loc = tuple  # a key path: ("environments", "prod", "postgres", "port")


@dataclass
class YamlDocument:
    """Parsed YAML (ruamel round-trip containers, which are dict/list subclasses)
    plus the means to find where any key path sits in the file."""

    file: str
    data: Any
    text: str

    def position(self, loc: Iterable, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the node at ``loc`` or of its deepest existing
        ancestor. With ``key=True`` point at the key rather than the value."""
        node = self.data
        line, col = _start_of(node)
        parts = list(loc)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict) and part in node:
                lc = getattr(node, "lc", None)
                if lc is not None:
                    try:
                        pos = lc.key(part) if (key and last) else lc.value(part)
                        # a value that is a nested block starts on the next line;
                        # pointing at its key reads better for the user.
                        if not (key and last) and isinstance(node[part], (dict, list)) and node[part]:
                            pos = lc.key(part)
                        line, col = pos[0] + 1, pos[1] + 1
                    except (KeyError, TypeError, AttributeError):
                        pass
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                lc = getattr(node, "lc", None)
                if lc is not None:
                    try:
                        pos = lc.item(part)
                        line, col = pos[0] + 1, pos[1] + 1
                    except (KeyError, TypeError, AttributeError, IndexError):
                        pass
                node = node[part]
            else:
                break
        return line, col

    def diagnostic(self, loc: Iterable, message: str, *, key: bool = False) -> Diagnostic:
        loc = tuple(loc)
        line, col = self.position(loc, key=key)
        return Diagnostic(self.file, line, col, format_loc(loc), message)


def _start_of(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and getattr(lc, "line", None) is not None:
        return lc.line + 1, (lc.col or 0) + 1
    return 1, 1


def format_loc(loc: Iterable) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_col_at(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    col = index - (before.rfind("\n") + 1) + 1
    return line, col


def load_yaml_text(text_or_bytes: "str | bytes", file: str) -> YamlDocument:
    """Parse YAML, turning every parser complaint into an InvalidFile with a position."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if isinstance(text_or_bytes, bytes):
        try:
            text = text_or_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, col = _line_col_at(text_or_bytes[: exc.start].decode("utf-8", "replace"), exc.start)
            raise InvalidFile([Diagnostic(file, line, col, "", f"not UTF-8 text (byte 0x{text_or_bytes[exc.start]:02x}); is this the right file?")], what=file) from None
    else:
        text = text_or_bytes
    for i, ch in enumerate(text):
        if ch == "\x00" or (ord(ch) < 32 and ch not in "\t\n\r"):
            line, col = _line_col_at(text, i)
            raise InvalidFile([Diagnostic(file, line, col, "", f"control character {ord(ch):#04x} in a text file; is this a binary file?")], what=file)

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        lines = text.splitlines()
        if 0 < line <= len(lines) and "\t" in lines[line - 1]:
            problem += " (tabs are not allowed for indentation in YAML; use spaces)"
        if "duplicate key" in problem.lower() or type(exc).__name__.startswith("Duplicate"):
            problem = _duplicate_message(exc)
        raise InvalidFile([Diagnostic(file, line, col, "", problem)], what=file) from None
    except YAMLError as exc:  # unmarked reader errors
        raise InvalidFile([Diagnostic(file, 1, 1, "", str(exc).splitlines()[0])], what=file) from None
    return YamlDocument(file=file, data=data, text=text)


def _duplicate_message(exc: Exception) -> str:
    problem = getattr(exc, "problem", "") or ""
    return f"{problem.strip()}: each key may appear once; remove or rename the repeated one"


def load_yaml_file(path: "str | Path") -> YamlDocument:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        from erpops.errors import UsageError

        raise UsageError(f"file not found: {p}", hint="check the path") from None
    except IsADirectoryError:
        from erpops.errors import UsageError

        raise UsageError(f"{p} is a directory, expected a YAML file") from None
    return load_yaml_text(raw, str(path))


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The nearest valid name for a typo, or None."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


# --- pydantic ValidationError -> diagnostics ---------------------------------


def diagnostics_from_validation(error, doc: YamlDocument, model: type, prefix: Loc = ()) -> list[Diagnostic]:
    """Translate a pydantic ValidationError raised while validating ``doc.data``
    (or its sub-node at ``prefix``) against ``model`` into positioned diagnostics
    with plain-language messages and did-you-mean suggestions for unknown keys."""
    out: list[Diagnostic] = []
    for err in error.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not _is_internal_loc(p))
        kind = err["type"]
        if kind == "extra_forbidden":
            bad = loc[-1]
            valid = _field_names_at(model, loc[len(prefix) : -1])
            msg = f"unknown key {bad!r}"
            hint = suggest(bad, valid) if valid else None
            if hint:
                msg += f" — did you mean {hint!r}?"
            elif valid:
                msg += f"; valid keys: {', '.join(sorted(valid))}"
            out.append(doc.diagnostic(loc, msg, key=True))
        elif kind == "missing":
            line, col = doc.position(loc[:-1], key=True)
            out.append(Diagnostic(doc.file, line, col, format_loc(loc), f"missing required key {loc[-1]!r}"))
        else:
            msg = _plain_message(err)
            out.append(doc.diagnostic(loc, msg))
    return out


def _is_internal_loc(part: Any) -> bool:
    # pydantic inserts validator names into loc for unions/functions, e.g.
    # "function-after[...]" or a tagged-union tag; they are not YAML keys.
    return isinstance(part, str) and ("[" in part and part.endswith("]") or part.startswith("function-"))


def _plain_message(err: dict) -> str:
    msg: str = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = err.get("input")
    if err["type"].endswith("_type") or err["type"].endswith("_parsing"):
        if not isinstance(got, (dict, list)):
            msg = f"{msg[0].lower()}{msg[1:]}, got {got!r}"
        else:
            msg = f"{msg[0].lower()}{msg[1:]}, got a {'mapping' if isinstance(got, dict) else 'list'}"
    return msg


def _field_names_at(model: Any, loc: Loc) -> list[str]:
    """Walk a pydantic model type along ``loc`` and return the field names
    (aliases included) of the model found there."""
    tp = model
    for part in loc:
        tp = _unwrap(tp)
        fields = getattr(tp, "model_fields", None)
        if fields is not None:
            match = next((f for n, f in fields.items() if n == part or f.alias == part), None)
            if match is None:
                return []
            tp = match.annotation
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (dict, typing.Dict) or (origin is not None and getattr(origin, "__name__", "") in ("Mapping", "dict")):
            tp = args[1] if len(args) == 2 else Any
        elif origin in (list, tuple, typing.List) or (origin is not None and getattr(origin, "__name__", "") in ("Sequence", "list")):
            tp = args[0] if args else Any
        else:
            return []
    tp = _unwrap(tp)
    fields = getattr(tp, "model_fields", None)
    if not fields:
        return []
    return [f.alias or n for n, f in fields.items()]


def _unwrap(tp: Any) -> Any:
    """Optional[X] / Union[X, ...] / Annotated[X, ...] -> the first pydantic model or X."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if hasattr(a, "model_fields")]
            tp = models[0] if models else (args[0] if args else tp)
            if typing.get_origin(tp) in (typing.Union, typing.Annotated):
                continue
        return tp
