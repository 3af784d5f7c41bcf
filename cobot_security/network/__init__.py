"""Cell segmentation (IEC 62443-3-2 zones and conduits): load, render to nftables/ROS/Cyclone, check."""

from cobot_security.network.check import (
    NetworkCheckRecord,
    RulesetAnalysis,
    analyse_ruleset,
    check_ruleset,
    read_live_ruleset,
    read_network_check,
    record_network_check,
)
from cobot_security.network.load import NetworkError, load_network, parse_network
from cobot_security.network.model import (
    Conduit,
    DiscoveryRange,
    Host,
    NetworkPolicy,
    Protocol,
    Zone,
)
from cobot_security.network.render import (
    render_conduit_table,
    render_cyclonedds,
    render_files,
    render_nftables,
    render_ros_env,
)
from cobot_security.network.rtps import RtpsPorts, compute_rtps_ports

__all__ = [
    "Conduit",
    "DiscoveryRange",
    "Host",
    "NetworkCheckRecord",
    "NetworkError",
    "NetworkPolicy",
    "Protocol",
    "RtpsPorts",
    "RulesetAnalysis",
    "Zone",
    "analyse_ruleset",
    "check_ruleset",
    "compute_rtps_ports",
    "load_network",
    "parse_network",
    "read_live_ruleset",
    "read_network_check",
    "record_network_check",
    "render_conduit_table",
    "render_cyclonedds",
    "render_files",
    "render_nftables",
    "render_ros_env",
]
