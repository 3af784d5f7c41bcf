"""Export of alerts, incidents, audit records and posture to the tools a plant already runs.

``syslog`` (RFC 5424 to a SIEM), ``metrics`` (Prometheus gauges), ``doctor`` (ros2 doctor plugins).
Import the submodules directly; this package re-exports nothing so that importing one exporter
never pulls in the dependencies of another (prometheus-client, rclpy).
"""

__all__: list[str] = []
