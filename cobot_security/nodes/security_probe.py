"""Pre-flight probe: can this rmw start a node with DDS Security under the current environment?

Run as ``python -m cobot_security.nodes.security_probe ENCLAVE`` with the ``ROS_SECURITY_*``
variables of the launch: it creates one hidden, rosout-less node in ``ENCLAVE`` and exits 0, or
prints rcl's error in one line on stderr and exits 1 (e.g. the PyPI wheels' Fast DDS: "This Fast
DDS version doesn't have the security libraries").  The caller turns discovery off for it
(``ROS_AUTOMATIC_DISCOVERY_RANGE=OFF``) so that it never shows in the cell's graph.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import rclpy
from rclpy.context import Context

PROBE_NODE = "_cobot_security_preflight"


def probe(enclave: str) -> str | None:
    """None when a secured node could be created in ``enclave``, else rcl's error (first line)."""
    context = Context()
    try:
        rclpy.init(context=context, args=["--ros-args", "--enclave", enclave])
        node = rclpy.create_node(PROBE_NODE, context=context, enable_rosout=False,
                                 start_parameter_services=False)
        node.destroy_node()
        return None
    except Exception as exc:  # noqa: BLE001 - any rcl failure is the answer, reported in one line
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    finally:
        rclpy.try_shutdown(context=context)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when DDS Security works here, 1 with rcl's error on stderr, 2 on bad usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m cobot_security.nodes.security_probe ENCLAVE", file=sys.stderr)
        return 2
    error = probe(args[0])
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
