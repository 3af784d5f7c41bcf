"""A hostile health publisher: floods or forges /cobot_security/health (used by supervisor_flood.py and tests).

Modes (``--mode``):

* ``flood`` - as fast as one process can publish, cycling through ``--kinds``: unsigned messages
  naming ``--invented`` invented reporters (``invented``), messages larger than the supervisor's
  size limit (``oversized``), with too many statuses (``too_many``), malformed statuses
  (``malformed``), a forged signature status (``forged_signature``), and messages signed with a
  stolen health_reporter key under invented host names, each a new reporter identity the
  supervisor must cap (``stolen_key``, needs ``--keystore``);
* ``forge`` - captures one genuine message of the real health_reporter on this host (printing
  ``{"captured": ...}``), waits ``--delay`` s, then sends "all OK" under its name every
  ``1/--rate`` s: unsigned, signed by another enclave's key (both claiming to be the reporter,
  and honestly as itself), the captured genuine message replayed, and the captured message turned
  all OK with a fresh seq and time under its genuine certificate and signature.

It prints what it sent as one JSON line (``{"sent": {kind: count}, ...}``) and exits after
``--seconds``.  It talks only to the local ROS domain of its environment (ROS_DOMAIN_ID).

    ROS_DOMAIN_ID=150 python benchmarks/hostile_publisher.py --mode flood --seconds 20
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import rclpy
from cryptography.hazmat.primitives.asymmetric import ec
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cobot_security.health.envelope import StatusRecord  # noqa: E402
from cobot_security.health.signer import HealthSigner, SignerSource  # noqa: E402
from cobot_security.keystore import pki  # noqa: E402
from cobot_security.keystore.files import read_keystore_file  # noqa: E402
from cobot_security.keystore.layout import KeystoreLayout  # noqa: E402
from cobot_security.nodes.convert import records_to_array, status_record  # noqa: E402

TOPIC = "/cobot_security/health"
REPORTER = "/cobot_security/health_reporter"
CHECKS = ("cert_expiry", "key_modes", "crl", "keystore_integrity", "security_env")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def invented(count: int, offset: int = 0) -> DiagnosticArray:
    """One unsigned message whose statuses each claim a different invented host and reporter."""
    msg = DiagnosticArray()
    msg.status = [DiagnosticStatus(level=b"\x00", name=f"cobot_security/{CHECKS[i % len(CHECKS)]}/sim/e{i}",
                                   message="ok", hardware_id=f"invented-{offset + i}",
                                   values=[KeyValue(key="reporter", value=f"/r{offset + i}")])
                  for i in range(count)]
    return msg


def malformed() -> DiagnosticArray:
    """Statuses no supervisor may merge: a bad level, a foreign name, a huge field, too many keys."""
    msg = DiagnosticArray()
    msg.status = [
        DiagnosticStatus(level=bytes([99]), name="cobot_security/crl/keystore", message="x", hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="not/ours", message="x", hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="cobot_security/crl/keystore", message="x" * 5000, hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="cobot_security/crl/keystore", message="x", hardware_id="evil",
                         values=[KeyValue(key=f"k{i}", value="v") for i in range(300)]),
    ]
    return msg


def forged_signature(host: str) -> DiagnosticArray:
    """"All OK" with a signature status whose signature is garbage."""
    msg = invented(5)
    for status in msg.status:
        status.hardware_id = host
    values = {"reporter": REPORTER, "node": "/health_reporter", "seq": str(int(time.time() * 1e6)),
              "sent_at": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "certificate": "MIIB" + "A" * 400,
              "signature": "MEUCIQ" + "B" * 90}
    msg.status.append(DiagnosticStatus(level=b"\x00", name=f"cobot_security/health_signature{REPORTER}",
                                       message="", hardware_id=host,
                                       values=[KeyValue(key=k, value=v) for k, v in values.items()]))
    return msg


class Publisher:
    """One rclpy node publishing on the health topic (and listening to it in ``forge`` mode)."""

    def __init__(self) -> None:
        rclpy.init()
        self.node = rclpy.create_node("hostile_publisher")
        self.pub = self.node.create_publisher(DiagnosticArray, TOPIC, 100)
        self.sent: Counter[str] = Counter()
        self.genuine: DiagnosticArray | None = None
        self._got = threading.Event()

    def publish(self, kind: str, msg: DiagnosticArray) -> None:
        self.pub.publish(msg)
        self.sent[kind] += 1

    def capture(self, host: str, timeout: float) -> DiagnosticArray | None:
        """The first genuine health_reporter message of ``host`` (spins until it came)."""
        def on_health(msg: DiagnosticArray) -> None:
            last = msg.status[-1] if msg.status else None
            if (last is not None and last.name == f"cobot_security/health_signature{REPORTER}"
                    and last.hardware_id == host):
                self.genuine = msg
                self._got.set()
        sub = self.node.create_subscription(DiagnosticArray, TOPIC, on_health, 10)
        executor = SingleThreadedExecutor()
        executor.add_node(self.node)
        deadline = time.monotonic() + timeout
        while not self._got.is_set() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        self.node.destroy_subscription(sub)
        return self.genuine

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown()


#: Flood kinds (``--kinds``): what each sends.
FLOOD_KINDS = ("invented", "oversized", "too_many", "malformed", "forged_signature", "stolen_key")


def run_flood(pub: Publisher, seconds: float, keystore: Path | None, count: int, kinds: list[str]) -> None:
    host = socket.gethostname()
    static = {"invented": invented(count), "oversized": invented(20_000, 10**6),
              "too_many": invented(2_000, 2 * 10**6), "malformed": malformed()}
    stolen = SignerSource(keystore, REPORTER, "/health_reporter", host).current() if keystore else None
    if "stolen_key" in kinds and stolen is None:
        raise SystemExit("flood: the stolen_key kind needs --keystore")
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        for kind in kinds:
            if kind in static:
                pub.publish(kind, static[kind])
            elif kind == "forged_signature":
                pub.publish(kind, forged_signature(host))
            elif stolen is not None:  # a stolen health_reporter key, a new invented host each time
                stolen.host = f"invented-host-{n}"
                body = [StatusRecord(0, f"cobot_security/crl/invented{n}", "ok", stolen.host, ())]
                pub.publish(kind, records_to_array(body + [stolen.sign(body, _now())], _now()))
        n += 1


def _as_ok(records: list[StatusRecord]) -> list[StatusRecord]:
    return [dataclasses.replace(r, level=0, message="ok") for r in records]


def _impostor(keystore: Path, stolen: str, host: str) -> HealthSigner:
    """A signer claiming to be the health_reporter, with the key and certificate of enclave ``stolen``."""
    layout = KeystoreLayout(keystore)
    key_path, cert_path = layout.enclave_file(stolen, "key.pem"), layout.enclave_file(stolen, "cert.pem")
    key = pki.load_private_key(read_keystore_file(layout, key_path), None, key_path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = pki.load_certificate(read_keystore_file(layout, cert_path), cert_path)
    return HealthSigner(REPORTER, "/health_reporter", host, key, cert)


def run_forge(pub: Publisher, seconds: float, keystore: Path, rate: float, delay: float) -> None:
    host = socket.gethostname()
    genuine = pub.capture(host, timeout=30.0)
    if genuine is None:
        raise SystemExit("forge: no genuine health_reporter message seen in 30 s")
    records = [status_record(s) for s in genuine.status]
    body, signature = records[:-1], records[-1]
    print(json.dumps({"captured": dict(signature.values)["seq"]}), flush=True)
    time.sleep(delay)
    thief = SignerSource(keystore, "/cell/gripper", "/cell/gripper", host).current()
    impostor = _impostor(keystore, "/cell/gripper", host)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ok = _as_ok(body)
        pub.publish("unsigned", records_to_array(ok, _now()))
        pub.publish("bad_certificate", records_to_array(ok + [impostor.sign(ok, _now())], _now()))
        pub.publish("out_of_scope", records_to_array(ok + [thief.sign(ok, _now())], _now()))
        pub.publish("replayed", genuine)
        fresh = {"seq": str(int(time.time() * 1e6)), "sent_at": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        reused = dataclasses.replace(signature, values=tuple((k, fresh.get(k, v)) for k, v in signature.values))
        pub.publish("bad_signature", records_to_array(ok + [reused], _now()))
        time.sleep(1.0 / rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("flood", "forge"), default="flood")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keystore", type=Path, help="keystore whose enclave keys the attacker stole")
    parser.add_argument("--invented", type=int, default=1000, help="invented reporters per unsigned message")
    parser.add_argument("--kinds", default=",".join(FLOOD_KINDS),
                        help=f"flood mode: comma-separated kinds out of {', '.join(FLOOD_KINDS)}")
    parser.add_argument("--rate", type=float, default=10.0, help="forge mode: rounds per second")
    parser.add_argument("--delay", type=float, default=0.0, help="forge mode: wait after the capture [s]")
    args = parser.parse_args()
    pub = Publisher()
    started = time.monotonic()
    try:
        if args.mode == "flood":
            kinds = [k for k in args.kinds.split(",") if k]
            unknown = sorted(set(kinds) - set(FLOOD_KINDS))
            if unknown or not kinds:
                parser.error(f"--kinds: expected some of {', '.join(FLOOD_KINDS)}, got {args.kinds!r}")
            run_flood(pub, args.seconds, args.keystore, args.invented, kinds)
        else:
            if args.keystore is None:
                parser.error("--mode forge needs --keystore")
            run_forge(pub, args.seconds, args.keystore, args.rate, args.delay)
    finally:
        elapsed = time.monotonic() - started
        print(json.dumps({"sent": dict(pub.sent), "seconds": round(elapsed, 3)}), flush=True)
        pub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
