"""Configuration for the ROS 2 middlewares that are not secured by DDS permissions (pure, no middleware import).

``zenoh_render`` writes rmw_zenoh's router and session configurations from the policy and the
keystore; the proof sessions that exercise them live with the other agents in ``cobot_security.dds``.
"""

__all__: list[str] = []
