"""Middleware proof adapter: real participants and sessions loading keystore enclaves.

``agent`` (the only importer of cyclonedds), the compiled Fast DDS agent (``fastdds/agent.cpp``)
and ``zenoh_agent`` (the only importer of zenoh) each run in their own process per enclave, exactly
as each ROS 2 node would; ``plan`` builds one plan from the policy, ``runner``/``zenoh_runner`` run
it, and ``verify`` judges what happened, in one report format for every middleware.
"""
