"""Required nodes: one that dies on its own fails the whole launch (``ros2 launch`` exits 1).

launch ends with 0 even when every process it started has crashed; a security stack that died is
not a success.  Exits the launch itself asked for (shutdown, a rolling restart) do not count.
"""

from __future__ import annotations

from launch.action import Action
from launch.actions import RegisterEventHandler
from launch.event import Event
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.launch_context import LaunchContext

from cobot_security.errors import CobotSecurityError

__all__ = ["RequiredNodeExited", "RequiredNodes"]


class RequiredNodeExited(CobotSecurityError):
    """A required node exited with a failure while the launch was running (exit 1)."""


class RequiredNodes:
    """Watches node actions; the first unexpected failing exit raises :class:`RequiredNodeExited`."""

    def __init__(self) -> None:
        self._stopping: set[int] = set()

    def watch(self, node: Action) -> RegisterEventHandler:
        """The handler to put in the launch description right after ``node``."""
        return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=self._on_exit))

    def expect_exit(self, node: Action) -> None:
        """``node`` is being stopped on purpose (rolling restart): its exit is not a failure."""
        self._stopping.add(id(node))

    def _on_exit(self, event: Event, context: LaunchContext) -> None:
        assert isinstance(event, ProcessExited)
        if context.is_shutdown or id(event.action) in self._stopping or event.returncode == 0:
            return None
        raise RequiredNodeExited(
            f"required node {event.process_name} exited with code {event.returncode} while the launch was "
            "running (its output is above): stopping the launch")
