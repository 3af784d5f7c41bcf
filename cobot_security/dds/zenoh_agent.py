"""One Zenoh session in its own process, as one rmw_zenoh node (or the router) would open it.

Run as ``python -m cobot_security.dds.zenoh_agent '<json spec>'``; the only module that imports
zenoh.  It speaks the DDS agents' JSON-line protocol, with DDS names translated to rmw_zenoh keys
by the runner (``keys``): a writer of ``rt/X`` puts on X's key, a reader subscribes; a writer of
``rq/XRequest`` (or reader of ``rr/XReply``) queries X and reports each reply as received on
``rr/XReply``; a reader of ``rq/XRequest`` (or writer of ``rr/XReply``) declares a queryable on X,
reports each query as received on ``rq/XRequest`` and replies when it may write ``rr/XReply``.

The ``router`` role opens the router from its configuration and is also the witness: its own
subscriber and queryable on ``<domain>/**`` see exactly what the access control let in, and it
puts and queries on ``probes`` so that a session's subscriber or queryable shows whether the
router may forward to it.  A router-local session is not subject to the access control, whose
rules apply on the links to sessions.
"""

from __future__ import annotations

import json
import select
import sys
import threading
import time
from typing import Any

_OUTPUT = threading.Lock()


def _emit(event: str, **fields: Any) -> None:
    # Zenoh calls back from its own threads: one whole line at a time, or the runner drops both.
    line = json.dumps({"event": event, **fields})
    with _OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _config(zenoh: Any, spec: dict[str, Any]) -> Any:
    document = spec["config_document"] if spec.get("config_document") else None
    config = zenoh.Config.from_json5(json.dumps(document)) if document else zenoh.Config.from_file(spec["config"])
    key = "listen/endpoints" if spec["role"] == "router" else "connect/endpoints"
    # Proof runs use a free loopback port; everything else is the rendered configuration.
    config.insert_json5(key, json.dumps([spec["endpoint"]]))
    return config


class _Exchange:
    """Reports receipts once per (DDS name, sender), dropping the session's own loopback."""

    def __init__(self, name: str, reverse: dict[str, str]) -> None:
        self.name = name
        self.reverse = reverse
        self.seen: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.sequence = 0

    def record(self, dds_name: str | None, payload: str) -> None:
        if dds_name is None:
            return
        sender = payload.split("|", 1)[0]
        with self.lock:
            if sender != self.name and (dds_name, sender) not in self.seen:
                self.seen.add((dds_name, sender))
                _emit("received", topic=dds_name, sender=sender)

    def payload(self) -> str:
        return f"{self.name}|{self.sequence}"


def _text(value: Any) -> str:
    return value.to_string() if value is not None else ""


def _declare(session: Any, spec: dict[str, Any], ex: _Exchange, zenoh: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Declare subscribers/queryables; return the put keys and the query keys (key → reply DDS name)."""
    keys: dict[str, str] = spec["keys"]
    writers, readers = set(spec.get("writers", [])), set(spec.get("readers", []))
    puts: dict[str, Any] = {}
    queries: dict[str, str] = {}
    services = {name[3:-len("Request")] for name in keys if name.startswith("rq/")}
    for name in sorted(writers | readers):
        if name.startswith("rt/"):
            if name in writers:
                puts[name] = session.declare_publisher(keys[name])
            if name in readers:
                session.declare_subscriber(keys[name], lambda s, n=name: ex.record(n, _text(s.payload)))
    for service in sorted(services):
        request, reply = f"rq/{service}Request", f"rr/{service}Reply"
        key = keys[request]
        if request in writers or reply in readers:
            queries[key] = reply
        if request in readers or reply in writers:
            def on_query(query: Any, request: str = request, reply: str = reply) -> None:
                ex.record(request, _text(query.payload))
                if reply in writers:
                    query.reply(query.key_expr, ex.payload())
            session.declare_queryable(key, on_query)
    for name in sorted(writers | readers):
        _emit("writer" if name in writers else "reader", topic=name, ok=True)
        if name in writers and name in readers:
            _emit("reader", topic=name, ok=True)
    return puts, queries


def _witness(session: Any, spec: dict[str, Any], ex: _Exchange) -> None:
    domain = spec["domain_id"]
    session.declare_subscriber(f"{domain}/**", lambda s: ex.record(ex.reverse.get(str(s.key_expr)), _text(s.payload)))

    def on_query(query: Any) -> None:
        request = ex.reverse.get(str(query.key_expr))
        ex.record(request, _text(query.payload))
        query.reply(query.key_expr, ex.payload())
    session.declare_queryable(f"{domain}/**", on_query)


def _query(session: Any, zenoh: Any, key: str, reply: str, ex: _Exchange) -> None:
    def on_reply(answer: Any) -> None:
        if answer.ok is not None:
            ex.record(reply, _text(answer.ok.payload))
    session.get(key, on_reply, payload=ex.payload(), timeout=2.0,
                consolidation=zenoh.ConsolidationMode.NONE)


def run(spec: dict[str, Any]) -> int:
    """Execute one agent spec; returns the process exit code (0 even when the session was refused)."""
    try:
        import zenoh  # deferred: the binding is optional and only this agent process needs it
    except ImportError as exc:
        _emit("fatal", error=f"zenoh is not importable: {exc}")
        return 3
    reverse = {key: name for name, key in spec["keys"].items()}
    ex = _Exchange(spec["name"], reverse)
    try:
        session = zenoh.open(_config(zenoh, spec))
    except Exception as exc:  # noqa: BLE001 - zenoh raises ZError; any failure is a refused session
        # ZError text ends with the Rust source location; the part before it is the reason.
        _emit("participant", ok=False, code=-1, error=str(exc).splitlines()[0].split(" at /")[0].rstrip()[:200])
        return 0
    _emit("participant", ok=True)
    if spec["role"] == "router":
        _witness(session, spec, ex)
        probes = {name: spec["keys"][name] for name in spec.get("probes", [])}
        puts = {name: key for name, key in probes.items() if name.startswith("rt/")}
        queries = {key: "rr/" + name[3:-len("Request")] + "Reply" for name, key in probes.items()
                   if name.startswith("rq/")}
    else:
        puts, queries = _declare(session, spec, ex, zenoh)
    _emit("ready")
    period = float(spec.get("period_s", 0.1))
    deadline = time.monotonic() + float(spec.get("deadline_s", 60.0))
    while time.monotonic() < deadline:
        for target in puts.values():
            session.put(target, ex.payload()) if isinstance(target, str) else target.put(ex.payload())
        for key, reply in queries.items():
            _query(session, zenoh, key, reply, ex)
        ex.sequence += 1
        ready, _, _ = select.select([sys.stdin], [], [], period)
        if ready and not sys.stdin.readline():
            break
    _emit("stopped", samples_written=ex.sequence)
    session.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the single argument is the JSON spec."""
    args = sys.argv[1:] if argv is None else argv
    return run(json.loads(args[0]))


if __name__ == "__main__":
    sys.exit(main())
