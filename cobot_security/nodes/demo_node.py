"""demo_node: one generic stand-in for the example cell's nodes (arm driver, gripper, vision, ...).

Parameterised by its policy entry (``workcell_demo.launch.py`` passes the resolved names of
:func:`cobot_security.launch_plan.demo_node_entries`): it publishes a ``std_msgs/String`` on
each granted topic every ``period_s``, subscribes each granted subscription (logging what it hears
at debug level), serves and calls its granted services and actions.  It uses exactly what the
policy grants, so under DDS Security it runs clean and ``policy learn`` learns its entry back.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionClient, ActionServer
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger
from test_msgs.action import Fibonacci

from cobot_security.errors import InputError
from cobot_security.launch_plan.cell import is_stack_topic


def _string_list(node: Any, name: str) -> list[str]:
    """A read-only list-of-names parameter (``['']``, the command line's empty list, reads as [])."""
    return [v for v in (node.declare_parameter(name, [""], ParameterDescriptor(read_only=True)).value or []) if v]


def _add_services_and_actions(node: Any) -> None:
    """Serve and call what the policy entry grants: std_srvs/Trigger services, test_msgs Fibonacci actions."""
    def answer(_request: Any, response: Any) -> Any:
        response.success, response.message = True, node.get_fully_qualified_name()
        return response

    def execute(goal: Any) -> Any:
        goal.succeed()
        return Fibonacci.Result(sequence=[0, 1])

    for service in _string_list(node, "serve"):
        node.create_service(Trigger, service, answer)
    for service in _string_list(node, "call"):
        node.create_client(Trigger, service)
    # Kept on the node object: rclpy holds actions weakly through the executor's waitables.
    node.demo_actions = [ActionServer(node, Fibonacci, name, execute) for name in _string_list(node, "action_serve")]
    node.demo_actions += [ActionClient(node, Fibonacci, name) for name in _string_list(node, "action_call")]


def create_demo_node(node_name: str = "demo_node", **kwargs: Any) -> Any:
    """A node using each endpoint its parameters name: publishes each ``publish`` topic on a timer,
    subscribes each ``subscribe`` topic, serves ``serve`` and calls ``call`` services, serves
    ``action_serve`` and calls ``action_call`` actions.  Stack topics are DiagnosticArray and never
    published to (the stack owns them); every other topic is std_msgs/String.

    :raises InputError: ``period_s`` is not a positive number.
    """
    node: Any = Node(node_name, **kwargs)  # carries the demo's extra endpoint lists as attributes
    publish = _string_list(node, "publish")
    subscribe = _string_list(node, "subscribe")
    period: object = node.declare_parameter(
        "period_s", 1.0, ParameterDescriptor(read_only=True, dynamic_typing=True)).value
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
        raise InputError(None, "period_s", "a positive number of seconds", repr(period))
    publishers = [node.create_publisher(String, t, 10) for t in publish if not is_stack_topic(t)]
    node.demo_stack_publishers = [node.create_publisher(DiagnosticArray, t, 10) for t in publish if is_stack_topic(t)]
    count = [0]

    def listener(topic: str) -> Any:
        def on_message(msg: Any) -> None:
            node.get_logger().debug(f"{topic}: {msg}")
        return on_message

    def tick() -> None:
        count[0] += 1
        for publisher in publishers:
            publisher.publish(String(data=f"{node.get_fully_qualified_name()} #{count[0]}"))

    for topic in subscribe:
        node.create_subscription(DiagnosticArray if is_stack_topic(topic) else String, topic, listener(topic), 10)
    _add_services_and_actions(node)
    node.create_timer(float(period), tick)
    # A line a launch log can order against other processes' lines (the rolling restart test does).
    node.get_logger().info(f"ready: publishing {len(publishers)} topic(s) every {float(period)} s")
    return node


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``demo_node``: run until interrupted; 2 on bad parameters."""
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
