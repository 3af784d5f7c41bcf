"""YAML text → SafeLoader node graph, bounded in size and nesting depth (no Python objects yet).

A hostile document must cost bounded memory and time and end in a one-line
:class:`~cobot_security.errors.InputError`: at most :data:`MAX_YAML_BYTES` bytes are read, and
composition stops at :data:`MAX_YAML_DEPTH` levels of nesting (PyYAML's composer recurses once per
level, so a 2 KB file of ``[`` would otherwise end in a RecursionError).  The parser and scanner
underneath are state machines, so the composer is the only place depth must be counted.

Documents are composed by libyaml (``CSafeLoader``, about 10 times faster on a 200-enclave policy)
where PyYAML has it; libyaml composes at most 1000 levels in C, and the graph it returns is then
measured iteratively.  A document libyaml refuses is composed again by the bounded pure-Python
loader, whose messages are the ones users see, so that an error reads the same with or without
libyaml.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.reader import ReaderError

from cobot_security.errors import InputError
from cobot_security.input_file import MAX_YAML_BYTES, read_input_text

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "compose_yaml", "read_yaml_file"]

#: Deepest nesting of lists and mappings composed (the package's schemas need fewer than 10).
MAX_YAML_DEPTH = 32
#: libyaml's composer with the safe resolver (same tags and marks), where PyYAML was built with it.
_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


class _TooDeep(yaml.YAMLError):
    """Composition went deeper than :data:`MAX_YAML_DEPTH`; carries where."""

    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(f"nesting deeper than {MAX_YAML_DEPTH}")
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses to nest deeper than :data:`MAX_YAML_DEPTH`.

    The parser and scanner are state machines (no recursion); only ``compose_node`` recurses, so
    counting there keeps every document far from Python's recursion limit.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:  # type: ignore[override]
        """Compose one node, counting how deep it is."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def _too_deep(root: Node | None) -> bool:
    """Whether any node or alias of the document sits deeper than :data:`MAX_YAML_DEPTH`.

    Iterative, and a node is descended into once, where it is defined (an alias adds depth only
    for itself, as in the pure-Python composer), so shared or self-referencing anchors cannot make
    it loop.
    """
    stack: list[tuple[Node, int]] = [(root, 1)] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_YAML_DEPTH:
            return True
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
    return False


def compose_yaml(text: str, source: str, error_type: type[InputError] = InputError) -> Node | None:
    """The node graph of YAML ``text`` (None for an empty document), bounded in size and depth.

    :raises InputError: (of ``error_type``) on YAML syntax errors, with the line of the problem, on a
        document over :data:`MAX_YAML_BYTES` or nested deeper than :data:`MAX_YAML_DEPTH`.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_YAML_BYTES:
        raise error_type(source, None, f"a YAML document of at most {MAX_YAML_BYTES} bytes", f"{size} bytes")
    if _FAST_LOADER is not None:
        try:
            root = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # bad input: let the bounded pure-Python loader word the error
        else:
            if not _too_deep(root):
                return root  # type: ignore[no-any-return]
            # Too deep: the bounded loader below stops at the same place and words the error.
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        return loader.get_single_node()  # type: ignore[no-any-return]
    except ReaderError as exc:  # a control character anywhere, found before parsing starts
        code = exc.character[0] if isinstance(exc.character, bytes) else exc.character
        raise error_type(source, None, "YAML text without control characters", f"character #x{code:04x}",
                         text.count("\n", 0, max(exc.position, 0)) + 1) from None
    except _TooDeep as exc:
        raise error_type(source, None, f"lists and mappings nested at most {MAX_YAML_DEPTH} deep",
                         "deeper nesting", exc.mark.line + 1 if exc.mark is not None else None) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        got = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None:
            got += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise error_type(source, None, "valid YAML", got, line) from None
    except yaml.YAMLError as exc:
        raise error_type(source, None, "valid YAML", str(exc)) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: Path | str, what: str, error_type: type[InputError] = InputError) -> str:
    """The UTF-8 text of the YAML file at ``path``; ``what`` names it in errors ("a policy file").

    Reads at most :data:`MAX_YAML_BYTES` + 1 bytes, so ``/dev/zero`` or a huge file is refused
    without being loaded.

    :raises InputError: (of ``error_type``) when the file cannot be read or decoded, or is too big.
    """
    return read_input_text(path, what, MAX_YAML_BYTES, error_type)
