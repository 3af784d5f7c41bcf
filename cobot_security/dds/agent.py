"""One DDS participant in its own process, loading one enclave as a ROS 2 node would.

Run as ``python -m cobot_security.dds.agent '<json spec>'``.  It creates the participant, tries
every writer and reader it was asked for, writes a sample tagged with its name on each writer
every ``period_s``, and reports what happened as JSON lines on stdout.  It stops at end of stdin
(the parent closes it) or at its deadline.  This is the only module that imports cyclonedds.
"""


import json
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cobot_security.dds.properties import security_properties


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _error_fields(exc: Exception) -> dict[str, Any]:
    code = getattr(exc, "code", None)
    return {"code": code, "error": str(exc).splitlines()[0][:200]}


def _import_cyclonedds() -> SimpleNamespace | None:
    """The Cyclone DDS classes the agent uses, or None (after emitting ``fatal``) when unavailable."""
    try:
        # Deferred: only the agent process loads Cyclone DDS (the core never imports it).
        from cyclonedds.core import DDSException
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.idl import IdlStruct
        from cyclonedds.pub import DataWriter
        from cyclonedds.qos import Policy, Qos
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        from cyclonedds.util import duration
    except ImportError as exc:
        _emit("fatal", error=f"cyclonedds is not importable: {exc}")
        return None

    @dataclass
    class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
        """Same wire type as std_msgs/String under rmw's naming (permissions ignore types)."""

        data: str

    return SimpleNamespace(DDSException=DDSException, DomainParticipant=DomainParticipant, DataWriter=DataWriter,
                           DataReader=DataReader, Policy=Policy, Qos=Qos, Topic=Topic, duration=duration,
                           String_=String_)


def _endpoints(dds: SimpleNamespace, participant: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create every writer and reader asked for, reporting each as created or refused."""
    entity_qos = dds.Qos(dds.Policy.Reliability.Reliable(max_blocking_time=dds.duration(seconds=1)),
                         dds.Policy.History.KeepLast(8))
    topics: dict[str, Any] = {}
    writers: dict[str, Any] = {}
    readers: dict[str, Any] = {}

    def topic(topic_name: str) -> Any:
        if topic_name not in topics:
            topics[topic_name] = dds.Topic(participant, topic_name, dds.String_)
        return topics[topic_name]

    for kind, table, factory in (
        ("writer", writers, lambda t: dds.DataWriter(participant, topic(t), qos=entity_qos)),
        ("reader", readers, lambda t: dds.DataReader(participant, topic(t), qos=entity_qos)),
    ):
        for topic_name in spec.get(f"{kind}s", []):
            try:
                table[topic_name] = factory(topic_name)
                _emit(kind, topic=topic_name, ok=True)
            except dds.DDSException as exc:
                _emit(kind, topic=topic_name, ok=False, **_error_fields(exc))
    return writers, readers


def _exchange(dds: SimpleNamespace, name: str, writers: dict[str, Any], readers: dict[str, Any],
              spec: dict[str, Any]) -> int:
    """Write a marked sample per writer every period, report each new sender heard; return samples written."""
    seen: set[tuple[str, str]] = set()
    period = float(spec.get("period_s", 0.1))
    marker = str(spec.get("marker", ""))
    deadline = time.monotonic() + float(spec.get("deadline_s", 60.0))
    sequence = 0
    while time.monotonic() < deadline:
        for writer in writers.values():
            writer.write(dds.String_(f"{name}|{sequence}|{marker}"))
        sequence += 1
        for topic_name, reader in readers.items():
            for sample in reader.take(32):
                sender = getattr(sample, "data", "").split("|", 1)[0]
                # Own samples loop back locally; they prove nothing about other participants.
                if sender != name and (topic_name, sender) not in seen:
                    seen.add((topic_name, sender))
                    _emit("received", topic=topic_name, sender=sender)
        ready, _, _ = select.select([sys.stdin], [], [], period)
        if ready and not sys.stdin.readline():
            break
    return sequence


def run(spec: dict[str, Any]) -> int:
    """Execute one agent spec; returns the process exit code (0 even when actions were refused)."""
    dds = _import_cyclonedds()
    if dds is None:
        return 3
    qos = None
    if spec.get("enclave_dir"):
        props = security_properties(Path(spec["enclave_dir"]))
        qos = dds.Qos(*[dds.Policy.Property(key, value) for key, value in props])
    try:
        participant = dds.DomainParticipant(int(spec["domain_id"]), qos=qos)
    except dds.DDSException as exc:
        _emit("participant", ok=False, **_error_fields(exc))
        return 0
    _emit("participant", ok=True)
    writers, readers = _endpoints(dds, participant, spec)
    _emit("ready")
    _emit("stopped", samples_written=_exchange(dds, spec["name"], writers, readers, spec))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the single argument is the JSON spec."""
    args = sys.argv[1:] if argv is None else argv
    return run(json.loads(args[0]))


if __name__ == "__main__":
    sys.exit(main())
