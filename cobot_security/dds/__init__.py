"""DDS-Security proof adapter: real Cyclone DDS participants loading keystore enclaves.

Only ``agent`` imports cyclonedds, and it runs in its own process per enclave, exactly as each ROS 2
node would; ``verify`` plans flows from the policy, runs the agents and judges what happened.
"""
