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
from typing import Any

from cobot_security.dds.properties import security_properties


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _error_fields(exc: Exception) -> dict[str, Any]:
    code = getattr(exc, "code", None)
    return {"code": code, "error": str(exc).splitlines()[0][:200]}


def run(spec: dict[str, Any]) -> int:
    """Execute one agent spec; returns the process exit code (0 even when actions were refused)."""
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
        return 3

    @dataclass
    class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
        """Same wire type as std_msgs/String under rmw's naming (permissions ignore types)."""

        data: str

    name = spec["name"]
    qos = None
    if spec.get("enclave_dir"):
        props = security_properties(Path(spec["enclave_dir"]))
        qos = Qos(*[Policy.Property(key, value) for key, value in props])
    try:
        participant = DomainParticipant(int(spec["domain_id"]), qos=qos)
    except DDSException as exc:
        _emit("participant", ok=False, **_error_fields(exc))
        return 0
    _emit("participant", ok=True)

    entity_qos = Qos(
        Policy.Reliability.Reliable(max_blocking_time=duration(seconds=1)),
        Policy.History.KeepLast(8),
    )
    topics: dict[str, Any] = {}
    writers: dict[str, Any] = {}
    readers: dict[str, Any] = {}

    def topic(topic_name: str) -> Any:
        if topic_name not in topics:
            topics[topic_name] = Topic(participant, topic_name, String_)
        return topics[topic_name]

    for kind, table, factory in (
        ("writer", writers, lambda t: DataWriter(participant, topic(t), qos=entity_qos)),
        ("reader", readers, lambda t: DataReader(participant, topic(t), qos=entity_qos)),
    ):
        for topic_name in spec.get(f"{kind}s", []):
            try:
                table[topic_name] = factory(topic_name)
                _emit(kind, topic=topic_name, ok=True)
            except DDSException as exc:
                _emit(kind, topic=topic_name, ok=False, **_error_fields(exc))
    _emit("ready")

    seen: set[tuple[str, str]] = set()
    period = float(spec.get("period_s", 0.1))
    marker = str(spec.get("marker", ""))
    deadline = time.monotonic() + float(spec.get("deadline_s", 60.0))
    sequence = 0
    while time.monotonic() < deadline:
        for topic_name, writer in writers.items():
            writer.write(String_(f"{name}|{sequence}|{marker}"))
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
    _emit("stopped", samples_written=sequence)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the single argument is the JSON spec."""
    args = sys.argv[1:] if argv is None else argv
    return run(json.loads(args[0]))


if __name__ == "__main__":
    sys.exit(main())
