"""cobot_security: SROS2 keystores, least-privilege DDS permissions and posture checks for cobot cells."""

__version__ = "0.5.0"

__all__ = ["__version__"]
