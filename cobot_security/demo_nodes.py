"""demo_node: one generic stand-in for the example cell's nodes (arm driver, gripper, vision, ...).

Parameterised by its policy entry (``workcell_demo.launch.py`` passes the resolved topics of
:func:`cobot_security.launch_support.demo_node_entries`): it publishes a ``std_msgs/String`` on
each granted topic every ``period_s`` and subscribes each granted subscription, logging what it
hears at debug level.  It uses only what the policy grants, so under DDS Security it runs clean.
rclpy is imported inside :func:`main` because this module sits outside ``nodes/`` and the import
boundary test imports every module there without rclpy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from cobot_security.errors import InputError


def create_demo_node(node_name: str = "demo_node", **kwargs: Any) -> Any:
    """A node that publishes each ``publish`` topic on a timer and subscribes each ``subscribe`` topic.

    :raises InputError: ``period_s`` is not a positive number.
    """
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.node import Node
    from std_msgs.msg import String

    node = Node(node_name, **kwargs)
    read_only = ParameterDescriptor(read_only=True)
    publish: list[str] = node.declare_parameter("publish", [""], read_only).value or []
    subscribe: list[str] = node.declare_parameter("subscribe", [""], read_only).value or []
    period: object = node.declare_parameter(
        "period_s", 1.0, ParameterDescriptor(read_only=True, dynamic_typing=True)).value
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
        raise InputError(None, "period_s", "a positive number of seconds", repr(period))
    publishers = [node.create_publisher(String, topic, 10) for topic in publish if topic]
    count = [0]

    def listener(topic: str) -> Any:
        def on_message(msg: Any) -> None:
            node.get_logger().debug(f"{topic}: {msg.data}")
        return on_message

    def tick() -> None:
        count[0] += 1
        for publisher in publishers:
            publisher.publish(String(data=f"{node.get_fully_qualified_name()} #{count[0]}"))

    for topic in subscribe:
        if topic:
            node.create_subscription(String, topic, listener(topic), 10)
    node.create_timer(float(period), tick)
    return node


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``demo_node``: run until interrupted; 2 on bad parameters."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=list(args) if args is not None else None)
    node = None
    try:
        node = create_demo_node()
        rclpy.spin(node)
    except InputError as exc:
        print(f"demo_node: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
