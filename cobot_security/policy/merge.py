"""``policy learn --merge``: add what was observed to an existing policy file, keeping its text.

The existing file is edited as text, never re-dumped, so its structure, order and comments stay:
names missing from a list are appended to it (block lists get new ``- name`` lines, flow lists
``[a, b]`` get ``, name``), missing keys and sections are added to their mapping, and nodes the file
does not name get a new enclave at the end of ``enclaves:``.  Nothing is removed: grants that were
never observed are returned as ``unused grant`` lint findings.  The result is loaded again and
must grant everything observed, or the merge fails rather than write a wrong file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security.errors import PolicyError
from cobot_security.policy.export import enclave_document
from cobot_security.policy.learn import covers, free_enclave_path, relative_name, unused_grants
from cobot_security.policy.lint import LintFinding
from cobot_security.policy.load import load_policy_text
from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy
from cobot_security.policy.observation import ENDPOINT_FIELDS
from cobot_security.yaml_source import compose_yaml

#: NodeGrants field → (section, key) in the YAML.
_YAML_KEYS: dict[str, tuple[str, str]] = {
    "publish": ("topics", "publish"), "subscribe": ("topics", "subscribe"),
    "services_serve": ("services", "serve"), "services_call": ("services", "call"),
    "actions_serve": ("actions", "serve"), "actions_call": ("actions", "call"),
}
#: Header lines written by a merge start with this (and are replaced by the next merge).
MERGE_MARK = "# learn --merge: "


@dataclass(frozen=True)
class Addition:
    """One name added to the file: the node it was added for, its grant field and spelling."""

    enclave: str
    node: str
    field: str
    name: str


@dataclass(frozen=True)
class MergeResult:
    """The merged text, what was added, which enclaves are new, and the unused grants."""

    text: str
    additions: tuple[Addition, ...]
    new_enclaves: tuple[str, ...]
    unused: tuple[LintFinding, ...]


class _Edits:
    """Text insertions keyed by line: inside a line at a column, or as new lines after it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"
        self.inline: dict[int, list[tuple[int, str]]] = {}
        self.after: dict[int, list[str]] = {}

    def insert(self, line: int, column: int, text: str) -> None:
        self.inline.setdefault(line, []).append((column, text))

    def add_lines(self, after_line: int, lines: list[str]) -> None:
        self.after.setdefault(after_line, []).extend(lines)

    def apply(self) -> str:
        out = []
        for index, line in enumerate(self.lines):
            for column, text in sorted(self.inline.get(index, ()), key=lambda e: -e[0]):
                line = line[:column] + text + line[column:]
            out.append(line)
            out.extend(text + "\n" for text in self.after.get(index, ()))
        return "".join(out)


def _last_line(node: Node) -> int:
    """0-based line where ``node``'s text ends (block collections end at their last child)."""
    if isinstance(node, (MappingNode, SequenceNode)) and node.flow_style is not True and node.value:
        last = node.value[-1]
        return _last_line(last[1] if isinstance(node, MappingNode) else last)
    mark = node.end_mark
    return mark.line - 1 if mark.column == 0 and mark.line > node.start_mark.line else mark.line


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _append_items(edits: _Edits, seq: SequenceNode, names: list[str]) -> None:
    if seq.flow_style is True or not seq.value:
        items = ", ".join(_flow(n) for n in names)
        edits.insert(seq.end_mark.line, seq.end_mark.column - 1, (", " if seq.value else "") + items)
        return
    indent = " " * seq.start_mark.column
    edits.add_lines(_last_line(seq), [f"{indent}- {_flow(n)}" for n in names])


def _add_key(edits: _Edits, mapping: MappingNode, key: str, value: object, comment: str | None = None) -> None:
    if mapping.flow_style is True or not mapping.value:
        entry = f"{_flow(key)}: {_flow(value)}"
        edits.insert(mapping.end_mark.line, mapping.end_mark.column - 1, (", " if mapping.value else "") + entry)
        return
    indent = " " * mapping.value[0][0].start_mark.column
    body = yaml.safe_dump({key: value}, default_flow_style=None, sort_keys=False, width=100).splitlines()
    lines = ([""] + [indent + comment] if comment else []) + [indent + line for line in body]
    edits.add_lines(_last_line(mapping), lines)


def _child(mapping: Node, key: str) -> Node | None:
    if isinstance(mapping, MappingNode):
        for key_node, value in mapping.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return value
    return None


def _node_mappings(root: Node) -> dict[tuple[str, int], MappingNode]:
    """(enclave path, node index) → the YAML mapping holding that node's keys."""
    result: dict[tuple[str, int], MappingNode] = {}
    enclaves = _child(root, "enclaves")
    assert isinstance(enclaves, MappingNode)  # the loader accepted the file
    for key_node, body in enclaves.value:
        nodes = _child(body, "nodes")
        if isinstance(nodes, SequenceNode):
            for index, item in enumerate(nodes.value):
                assert isinstance(item, MappingNode)
                result[(key_node.value, index)] = item
        else:
            assert isinstance(body, MappingNode)
            result[(key_node.value, 0)] = body
    return result


def _missing(existing: NodeGrants, learned: NodeGrants) -> dict[str, list[str]]:
    """Per grant field, the learned names the existing node does not grant, spelled for it."""
    result = {}
    for kind in ENDPOINT_FIELDS:
        names = [learned.resolve(n) for n in getattr(learned, kind)]
        absent = [relative_name(n, existing.name, existing.namespace) for n in names if not covers(existing, kind, n)]
        if absent:
            result[kind] = absent
    return result


def _extend_node(edits: _Edits, mapping: MappingNode, missing: dict[str, list[str]]) -> None:
    new_sections: dict[str, dict[str, list[str]]] = {}
    for kind, names in missing.items():
        section, key = _YAML_KEYS[kind]
        section_node = _child(mapping, section)
        target = _child(section_node, key) if section_node is not None else None
        if isinstance(target, SequenceNode):
            _append_items(edits, target, names)
        elif isinstance(section_node, MappingNode):
            _add_key(edits, section_node, key, names)
        else:
            new_sections.setdefault(section, {})[key] = names
    for section, body in new_sections.items():
        _add_key(edits, mapping, section, body)


def _header(text: str, summary: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith(MERGE_MARK):
        lines.pop(0)
    return "".join(MERGE_MARK + line + "\n" for line in summary) + "".join(lines)


def merge_learned(text: str, source: str, learned: WorkcellPolicy, window: str) -> MergeResult:
    """Add to policy ``text`` what ``learned`` grants beyond it; ``window`` (e.g. "30 s") is for messages.

    :raises PolicyError: when ``text`` is not a valid policy, or the merged text would not grant
        everything observed (a layout this editor cannot extend).
    """
    existing = load_policy_text(text, source)
    root = compose_yaml(text, source, PolicyError)
    assert root is not None
    mappings = _node_mappings(root)
    where = {node.fqn: (enclave.path, index, node)
             for enclave in existing.enclaves for index, node in enumerate(enclave.nodes)}
    edits = _Edits(text)
    additions: list[Addition] = []
    new_enclaves: list[Enclave] = []
    taken = {e.path for e in existing.enclaves}
    for enclave in learned.enclaves:
        fresh = [node for node in enclave.nodes if node.fqn not in where]
        for node in enclave.nodes:
            if node.fqn not in where:
                continue
            path, index, current = where[node.fqn]
            missing = _missing(current, node)
            _extend_node(edits, mappings[(path, index)], missing)
            additions += [Addition(path, node.fqn, k, n) for k, names in missing.items() for n in names]
        if fresh:
            path = free_enclave_path(enclave.path, taken)
            taken.add(path)
            new_enclaves.append(dataclasses.replace(enclave, path=path, nodes=tuple(fresh)))
            additions += [Addition(path, n.fqn, k, name) for n in fresh for k in ENDPOINT_FIELDS
                          for name in getattr(n, k)]
    enclaves_node = _child(root, "enclaves")
    assert isinstance(enclaves_node, MappingNode)
    for enclave in new_enclaves:
        nodes = ", ".join(n.fqn for n in enclave.nodes)
        comment = f"# Learned: {nodes} (not in this policy before); review before signing."
        if existing.hosts:
            # The graph does not say which machine ran it: no member host gets its key until the
            # reviewer names one (the CA machine keeps it meanwhile).
            keeper = next((h for h in existing.hosts if h.role == "authority"), existing.hosts[0])
            enclave = dataclasses.replace(enclave, hosts=(keeper.name,))
            comment += f" Set hosts: to the machine(s) running it (now {keeper.name} only)."
        _add_key(edits, enclaves_node, enclave.path, enclave_document(enclave), comment=comment)
    unused = unused_grants(existing, learned, window)
    merged = _header(edits.apply(), [
        f"{len(additions)} grant(s) added (observed {window}), {len(new_enclaves)} new enclave(s),",
        f"{len(unused)} unused grant(s) kept (see `cobot-security policy lint --observed`).",
    ])
    _check_merged(merged, source, learned)
    return MergeResult(merged, tuple(additions), tuple(e.path for e in new_enclaves), tuple(unused))


def _check_merged(text: str, source: str, learned: WorkcellPolicy) -> None:
    """The merged text must load and grant every observed name of every learned node."""
    merged = load_policy_text(text, source)
    nodes = {node.fqn: node for enclave in merged.enclaves for node in enclave.nodes}
    for enclave in learned.enclaves:
        for node in enclave.nodes:
            target = nodes.get(node.fqn)
            for kind in ENDPOINT_FIELDS:
                for name in getattr(node, kind):
                    if target is None or not covers(target, kind, node.resolve(name)):
                        raise PolicyError(source, "enclaves", "a layout learn --merge can extend",
                                          f"{name!r} of node {node.fqn} still not granted after merging")
