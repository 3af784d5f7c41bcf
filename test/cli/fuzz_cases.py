"""Seeded generators of hostile input files for test_fuzz_inputs.py (issue 16, "Inputs").

Each generator mutates one of the shipped example files (or a small sros2 policy) so that the
result is invalid *by construction*: a name with a trailing line break, a name longer than its
limit, a lifetime outside its bounds or a huge number, nesting deeper than the limit, a wrong type,
an unknown key, a comment inside an sros2 name, an include bomb, an xpointer outside the safe
subset.  The CLI must answer every one with exit 2 and one line on stderr.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
XI = 'xmlns:xi="http://www.w3.org/2001/XInclude"'
#: Characters that must never survive at the end (or inside) of a name.
TAILS = ["\n", "\r\n", "\r", "\n\n", " \n", "\x85", "\u2028", "\t", "\x00"]
DEEP = "@@DEEP@@"
# libyaml's C loader and dumper when present: generating the cases should not dominate the test.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Case:
    """One hostile input: the files to write, the CLI arguments ({dir} = where they are), a label."""

    label: str
    argv: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _parsed(name: str) -> Any:
    return yaml.load((POLICIES / name).read_text(), Loader=_LOADER)


def _load(name: str) -> Any:
    """A fresh copy of a shipped example file's data (parsed once)."""
    return copy.deepcopy(_parsed(name))


def _dump(document: Any) -> bytes:
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=False, width=10_000).encode()


def _deep(rng: random.Random) -> str:
    depth = rng.choice([33, 40, 100, 1000, 3000])
    opener, closer = rng.choice([("[", "]"), ("{a: ", "}"), ("[{a: ", "}]")])
    return opener * depth + ("1" if "a" in opener else "") + closer * depth


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))] or [path]
    if isinstance(node, list):
        return [leaf for index, value in enumerate(node) for leaf in _leaves(value, (*path, index))] or [path]
    return [path]


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _with_deep_value(rng: random.Random, document: Any) -> bytes:
    """The document with one random leaf replaced by nesting deeper than the YAML limit."""
    _set(document, rng.choice([p for p in _leaves(document) if p]), DEEP)
    return _dump(document).replace(f"'{DEEP}'".encode(), _deep(rng).encode()).replace(
        DEEP.encode(), _deep(rng).encode())


def _token(rng: random.Random, length: int) -> str:
    first = rng.choice("abcdefghijklmnopqrstuvwxyz_")
    return first + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(length - 1))


# ---------------------------------------------------------------- the workcell policy

def _policy_case(label: str, text: bytes, rng: random.Random) -> Case:
    verb = rng.choice(["validate", "validate", "lint"])
    return Case(label, ("policy", verb, "--policy", "{dir}/cell.yaml"), {"cell.yaml": text})


def _name_slots(document: Any) -> list[tuple[str, Any]]:
    """(kind, locator) of every name in the policy: enclave keys, nodes, namespaces, grant items."""
    slots: list[tuple[str, Any]] = []
    for path, enclave in document["enclaves"].items():
        slots.append(("enclave", path))
        nodes = enclave.get("nodes") or [enclave]
        for index, node in enumerate(nodes):
            name_key = "name" if "nodes" in enclave else "node"
            slots.append(("node", (path, index, name_key)))
            slots.append(("namespace", (path, index, "namespace")))
            for section in ("topics", "services", "actions"):
                for direction, names in (node.get(section) or {}).items():
                    for item in range(len(names)):
                        slots.append(("grant", (path, index, section, direction, item)))
    return slots


def _rename(document: Any, kind: str, locator: Any, change: Callable[[str], str]) -> None:
    enclaves = document["enclaves"]
    if kind == "enclave":
        document["enclaves"] = {change(key) if key == locator else key: value for key, value in enclaves.items()}
        return
    path, index, *rest = locator
    enclave = enclaves[path]
    node = enclave["nodes"][index] if "nodes" in enclave else enclave
    if kind in ("node", "namespace"):
        node[rest[0]] = change(node.get(rest[0], "/"))
    else:
        section, direction, item = rest
        node[section][direction][item] = change(node[section][direction][item])


def policy_name_tails(rng: random.Random) -> Case:
    document = _load("workcell.yaml")
    kind, locator = rng.choice(_name_slots(document))
    tail = rng.choice(TAILS)
    middle = rng.random() < 0.2 and kind != "node"

    def change(name: str) -> str:
        if middle and "/" in name.strip("/"):
            head, _, rest = name.rpartition("/")
            return f"{head}{tail}/{rest}"
        return name + tail

    _rename(document, kind, locator, change)
    return _policy_case(f"{kind} name with {tail!r}", _dump(document), rng)


def policy_long_names(rng: random.Random) -> Case:
    document = _load("workcell.yaml")
    kind, locator = rng.choice(_name_slots(document))
    limits = {"enclave": 64, "node": 255, "namespace": 245, "grant": 247}
    extra = rng.choice([1, 2, 50, 300, 5000])

    def change(name: str) -> str:
        if kind == "node":
            return _token(rng, limits["node"] + extra)
        return "/" + _token(rng, limits[kind] + extra)

    _rename(document, kind, locator, change)
    return _policy_case(f"{kind} name {extra} over its limit", _dump(document), rng)


LIFETIME_BOUNDS = {
    ("ca", "duration"): (["1s", "59m", "23h", "86399s"], "36501d"),
    ("enclave", "duration"): (["1s", "30m", "59m", "3599s"], "36501d"),
    ("enclave", "renew_before"): (["1s", "14m", "899s"], None),
    ("crl", "next_update"): (["1s", "59m", "3599s"], "91d"),
}


def policy_lifetimes(rng: random.Random) -> Case:
    document = _load("workcell.yaml")
    section, key = rng.choice(sorted(LIFETIME_BOUNDS))
    too_short, too_long = LIFETIME_BOUNDS[(section, key)]
    huge = "".join(rng.choice("123456789") for _ in range(rng.randint(6, 60))) + rng.choice("smhd")
    value = rng.choice([*too_short, *([too_long] if too_long else []), huge, "0d", "-1d", "1.5d", "1w",
                        "90 d", "1e9d", "0x10d", "", "90d\n", "∞d", "99999999999999999999999999d"])
    document["certificates"][section][key] = value
    label = f"certificates.{section}.{key}: {value!r}"
    if rng.random() < 0.15:  # a rule between lifetimes instead
        document["certificates"] = rng.choice([
            {"ca": {"duration": "30d"}, "enclave": {"duration": "90d"}},
            {"enclave": {"duration": "2h", "renew_before": "2h"}},
            {"enclave": {"duration": "10d"}},
        ])
        label = f"certificates: {document['certificates']}"
    return _policy_case(label, _dump(document), rng)


def policy_deep(rng: random.Random) -> Case:
    return _policy_case("deep nesting", _with_deep_value(rng, _load("workcell.yaml")), rng)


def policy_types(rng: random.Random) -> Case:
    document = _load("workcell.yaml")
    enclave = rng.choice(list(document["enclaves"]))
    change = rng.choice([
        ("version", rng.choice(["1", 2, 1.0, True, None, [1]])),
        ("domain_ids", rng.choice(["42", 42, {"a": 1}, [42.0], [True], [10 ** rng.randint(3, 40)], [-1], [233], []])),
        ("name", rng.choice([["x"], {"a": 1}, None, ""])),
        ("enclaves", rng.choice([[], ["x"], "x", None, {}])),
        (("enclaves", enclave, "builtins"), rng.choice(["yes", 1, "true", None])),
        (("enclaves", enclave, "topics"), rng.choice([["x"], "x", {"publish": "x"}, {"publish": [1]}])),
        (("governance", "protection", "data"), rng.choice(["encrypt", "", 1, None, ["ENCRYPT"]])),
        (("certificates", "crl", "next_update"), rng.choice([7, 7.5, None, ["7d"], {"d": 7}])),
    ])
    path, value = change
    path = path if isinstance(path, tuple) else (path,)
    target = document
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return _policy_case(f"{'.'.join(map(str, path))} = {value!r:.40}", _dump(document), rng)


def policy_unknown_keys(rng: random.Random) -> Case:
    document = _load("workcell.yaml")
    enclave = rng.choice(list(document["enclaves"]))
    typo = rng.choice(["topic", "publsh", "nodes_", "Node", "namespac", "version\n", "<<"])
    where = rng.choice(["top", "enclave", "topics", "governance", "certificates", "nodes_entry"])
    if where == "top":
        document[typo] = 1
    elif where == "enclave":
        document["enclaves"][enclave][typo] = {"publish": ["x"]}
    elif where == "topics":
        document["enclaves"][enclave].setdefault("topics", {})[typo] = ["x"]
    elif where == "governance":
        document["governance"][typo] = True
    elif where == "certificates":
        document["certificates"][typo] = {"duration": "1d"}
    else:
        entry = {"name": "extra_node", "namespace": "/extra", typo: {"publish": ["x"]}}
        document["enclaves"][enclave] = {"nodes": [entry]}
    return _policy_case(f"unknown key {typo!r} in {where}", _dump(document), rng)


def policy_raw_bytes(rng: random.Random) -> Case:
    text = (POLICIES / "workcell.yaml").read_bytes()
    starts = [0] + [i + 1 for i, byte in enumerate(text[:-1]) if byte == ord("\n")]
    cut = rng.choice(starts)  # at the start of a line, so that no comment swallows the junk
    junk = rng.choice([b"\xff\xfe", b"\x00", b"\x80abc", b"{{{", b"&a [*a, *a]\n",
                       b"!!python/object/apply:os.system ['true']",
                       b"\t\t- x\n", b"key: value: other\n", b"'unterminated\n", b"%YAML 9.9\n---\n", b"---\n---\n"])
    label = f"{junk!r} at byte {cut}"
    if junk in (b"%YAML 9.9\n---\n", b"---\n---\n"):
        return _policy_case(label, junk + text, rng)
    return _policy_case(label, text[:cut] + junk + text[cut:], rng)


# ---------------------------------------------------------------- init: bad policies never reach the keystore

def init_hostile(rng: random.Random) -> Case:
    inner = rng.choice([policy_name_tails, policy_long_names, policy_lifetimes, policy_deep])(rng)
    return Case("init: " + inner.label, ("init", "--keystore", "{dir}/ks", "--policy", "{dir}/cell.yaml"),
                inner.files)


# ---------------------------------------------------------------- posture catalogs and attestations

def _posture_case(label: str, flag: str, text: bytes) -> Case:
    return Case(label, ("posture", "--keystore", "{dir}/no_keystore", flag, "{dir}/input.yaml"), {"input.yaml": text})


def attestations_hostile(rng: random.Random) -> Case:
    document = _load("attestations.yaml")
    entry = rng.choice(document["attestations"])
    how = rng.choice(["id", "deep", "date", "unknown", "type"])
    if how == "deep":
        return _posture_case("attestations: deep nesting", "--attestations", _with_deep_value(rng, document))
    if how == "id":
        entry["id"] = entry["id"] + rng.choice(TAILS)
    elif how == "date":
        entry[rng.choice(["date", "expires"])] = rng.choice(["2026-13-01", "99999-01-01", "2026-02-30", "tomorrow",
                                                             "2026-01-01T00:00:00Z", 20260101])
    elif how == "unknown":
        entry[rng.choice(["expiry", "Id", "evidence_"])] = "x"
    else:
        entry[rng.choice(["statement", "attested_by", "evidence"])] = rng.choice([None, 1, ["x"], {"a": 1}, ""])
    return _posture_case(f"attestations: {how}", "--attestations", _dump(document))


def controls_hostile(rng: random.Random) -> Case:
    document = _load("posture_controls.yaml")
    control = rng.choice(document["controls"])
    how = rng.choice(["id", "deep", "check", "unknown", "priority"])
    if how == "deep":
        return _posture_case("controls: deep nesting", "--controls", _with_deep_value(rng, document))
    if how == "id":
        control["id"] = control["id"] + rng.choice(TAILS)
    elif how == "check":
        control["checks"] = [rng.choice(["cert_expiry\n", "no_such_check", "", "Cert_Expiry"])]
    elif how == "unknown":
        control["check"] = ["cert_expiry"]
    else:
        control["priority"] = rng.choice(["urgent", "critical\n", 1, None])
    return _posture_case(f"controls: {how}", "--controls", _dump(document))


def network_hostile(rng: random.Random) -> Case:
    document = _load("network.yaml")
    how = rng.choice(["zone", "ifname", "deep", "cidr", "unknown"])
    if how == "deep":
        text = _with_deep_value(rng, document)
    else:
        if how == "zone":
            zone = rng.choice(list(document["zones"]))
            document["zones"][zone + rng.choice(TAILS)] = document["zones"].pop(zone)
        elif how == "ifname":
            zone = rng.choice(list(document["gateway"]["interfaces"]))
            document["gateway"]["interfaces"][zone] = rng.choice(["eth1\n", "x" * 16, "eth 1", "", "eth1\r"])
        elif how == "cidr":
            zone = rng.choice(list(document["zones"]))
            document["zones"][zone]["subnets"] = [rng.choice(["10.10.1.0/33", "10.10.1.0/24\n", "999.1.1.0/24",
                                                              "10.10.1.1/24x"])]
        else:
            document[rng.choice(["zone", "conduit", "gateways"])] = {}
        text = _dump(document)
    return Case(f"network: {how}", ("network", "render", "--network", "{dir}/network.yaml"), {"network.yaml": text})


def incident_plan_hostile(rng: random.Random) -> Case:
    document = _load("incident_response.yaml")
    how = rng.choice(["playbook", "role", "topic", "deep", "duration"])
    if how == "deep":
        text = _with_deep_value(rng, document)
    else:
        if how == "playbook":
            playbook = rng.choice(document["playbooks"])
            playbook["id"] = playbook["id"] + rng.choice(TAILS)
        elif how == "role":
            role = rng.choice(list(document["roles"]))
            document["roles"][role + rng.choice(TAILS)] = document["roles"].pop(role)
        elif how == "topic":
            document["settings"]["stop_topic"] = document["settings"]["stop_topic"] + rng.choice(TAILS)
        else:
            document["settings"]["drill_max_age"] = rng.choice(["999999999999999999d", "36501d", "0d", "1.5d"])
        text = _dump(document)
    return Case(f"incident plan: {how}", ("incident", "drill", "rogue_node", "--incident-dir", "{dir}/incidents",
                                          "--plan", "{dir}/plan.yaml", "--attestations", "{dir}/att.yaml"),
                {"plan.yaml": text})


def ruleset_json_hostile(rng: random.Random) -> Case:
    # Deeper than any recursion limit in use (mypy, run in-process by another test, raises it to 16384).
    depth = rng.choice([20_000, 100_000])
    text = rng.choice([
        "[" * depth + "]" * depth,
        '{"nftables": ' * depth + "[]" + "}" * depth,
        '{"nftables": [' + "[" * depth + "]" * depth + "]}",
        '{"nftables": [}',
        "\xff\xfe not utf-8",
    ])
    return Case(f"ruleset JSON: {text[:24]!r}", ("network", "check", "--keystore", "{dir}/no_keystore",
                                                 "--ruleset-json", "{dir}/ruleset.json"),
                {"ruleset.json": text.encode("latin-1")})


# ---------------------------------------------------------------- sros2 policy XML

_TOPICS = ["image_raw", "detections", "joint_states", "/cell/status", "~/reset"]


def _sros2(body: str, path: str = "/cell/vision", profile: str = 'ns="/cell" node="camera"') -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<policy version="0.2.0" {XI}><enclaves>'
            f'<enclave path="{path}"><profiles><profile {profile}>{body}</profile></profiles></enclave>'
            "</enclaves></policy>\n")


def _import_case(label: str, files: dict[str, str | bytes]) -> Case:
    encoded = {name: text.encode() if isinstance(text, str) else text for name, text in files.items()}
    return Case(label, ("policy", "import-sros2", "{dir}/top.policy.xml"), encoded)


def sros2_names(rng: random.Random) -> Case:
    topic = rng.choice(_TOPICS)
    how = rng.choice(["comment", "pi", "element", "newline_text", "newline_attr", "long"])
    if how in ("comment", "pi", "element"):
        inner = {"comment": "<!--x-->", "pi": "<?x y?>", "element": "<b/>"}[how]
        cut = rng.randint(0, len(topic))
        body = f'<topics publish="ALLOW"><topic>{topic[:cut]}{inner}{topic[cut:]}</topic></topics>'
        return _import_case(f"sros2: {how} in <topic>", {"top.policy.xml": _sros2(body)})
    if how == "newline_text":
        cut = rng.randint(1, len(topic) - 1)
        body = f'<topics subscribe="ALLOW"><topic>{topic[:cut]}&#10;{topic[cut:]}</topic></topics>'
        return _import_case("sros2: newline inside <topic>", {"top.policy.xml": _sros2(body)})
    if how == "newline_attr":
        attribute = rng.choice(["path", "node", "ns"])
        char = rng.choice(["&#10;", "&#13;", "&#x85;", "&#x2028;"])
        if attribute == "path":
            return _import_case("sros2: newline in @path", {"top.policy.xml": _sros2("", path="/cell/vision" + char)})
        profile = 'ns="/cell" node="camera' + char + '"' if attribute == "node" else 'ns="/cell' + char + '" node="camera"'  # noqa: E501 (test data kept on one line)
        return _import_case(f"sros2: newline in @{attribute}", {"top.policy.xml": _sros2("", profile=profile)})
    return _import_case("sros2: long enclave path", {"top.policy.xml": _sros2("", path="/" + _token(rng,
                                                                                                    rng.randint(64, 400)))})  # noqa: E501 (test data kept on one line)


def sros2_structure(rng: random.Random) -> Case:
    how = rng.choice(["deep", "entity", "doctype", "big", "include_count", "xpointer", "include_outside", "fifo_like"])
    common = "<profile><topics publish='ALLOW'><topic>a</topic></topics></profile>"
    if how == "deep":
        depth = rng.choice([33, 60, 300, 2000])
        return _import_case(f"sros2: {depth} deep", {"top.policy.xml": _sros2("<x>" * depth + "</x>" * depth)})
    if how == "entity":
        return _import_case("sros2: entity", {"top.policy.xml": '<!DOCTYPE p [<!ENTITY a "aaaa">]>' + _sros2("&a;")})
    if how == "doctype":
        return _import_case("sros2: doctype",
                            {"top.policy.xml": '<!DOCTYPE policy SYSTEM "http://x/p.dtd">' + _sros2("")})
    if how == "big":
        return _import_case("sros2: over 1 MiB", {"top.policy.xml": _sros2("<!--" + "x" * (1 << 20) + "-->")})
    if how == "include_count":
        count = rng.choice([257, 300, 1000])
        include = '<xi:include href="common.xml" xpointer="xpointer(/nothing)"/>'
        return _import_case(f"sros2: {count} includes", {"common.xml": common,
                                                         "top.policy.xml": _sros2(include * count)})
    if how == "xpointer":
        xpath = rng.choice(["//*[count(preceding::*)&lt;0]", "/profile/*|//*", "//a//b", "id('x')", "../x",
                            "/profile/following::*", "/profile/*[last()]", "/profile/*[position()&lt;3]",
                            "/" + "/a" * 17, "string(/profile)", "/profile/*[@a=concat('x','y')]"])
        include = f'<xi:include href="common.xml" xpointer="xpointer({xpath})"/>'
        return _import_case(f"sros2: xpointer {xpath}", {"common.xml": common, "top.policy.xml": _sros2(include)})
    if how == "include_outside":
        href = rng.choice(["../outside.xml", "/etc/hostname", "http://example.invalid/x.xml", "file:///etc/passwd",
                           "common.xml?x=1"])
        include = f'<xi:include href="{href}"/>'
        return _import_case(f"sros2: include {href}", {"top.policy.xml": _sros2(include)})
    include = '<xi:include href="sub"/>'  # a directory, not a file
    return _import_case("sros2: include a directory", {"sub/keep.xml": common, "top.policy.xml": _sros2(include)})


#: generator → how many cases it contributes (a few hundred in all).
GENERATORS: dict[Callable[[random.Random], Case], int] = {
    policy_name_tails: 60,
    policy_long_names: 25,
    policy_lifetimes: 40,
    policy_deep: 20,
    policy_types: 30,
    policy_unknown_keys: 20,
    policy_raw_bytes: 20,
    init_hostile: 8,
    attestations_hostile: 10,
    controls_hostile: 10,
    network_hostile: 12,
    incident_plan_hostile: 10,
    ruleset_json_hostile: 6,
    sros2_names: 30,
    sros2_structure: 30,
}


def generate(seed: int) -> list[Case]:
    """Every case, reproducibly: the same seed gives the same files and arguments."""
    rng = random.Random(seed)
    return [generator(rng) for generator, count in GENERATORS.items() for _ in range(count)]
