"""ament_python build of cobot_security (colcon) that also installs with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "cobot_security"

setup(
    name=PACKAGE,
    version="0.5.0",
    description="SROS2 keystores, least-privilege DDS permissions and posture checks for cobot cells",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["py.typed"], PACKAGE + ".dds": ["fastdds/agent.cpp"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/policies", glob("policies/*.yaml")),
    ],
    install_requires=["setuptools", "cryptography>=3.4", "PyYAML>=5.4", "lxml>=4.6", "asyncua>=1.0",
                      "prometheus-client>=0.16"],
    extras_require={"test": ["pytest>=7,<9", "pytest-timeout>=2", "pyflakes>=3", "ruff>=0.5", "mypy>=1.8",
                             "types-PyYAML", "lxml-stubs"],
                    # Zenoh proof sessions (verify --middleware zenoh); the core never imports it.
                    "zenoh": ["eclipse-zenoh>=1.0,<2"]},
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "cobot-security = cobot_security.cli.main:main",
            "health_reporter = cobot_security.nodes.health_reporter:main",
            "supervisor = cobot_security.nodes.supervisor:main",
            "demo_node = cobot_security.nodes.demo_node:main",
            "keystore_manager = cobot_security.nodes.keystore_manager:main",
        ],
        # `ros2 doctor` / `ros2 doctor --report` show the cell's posture (docs/export.md).
        "ros2doctor.checks": [
            "CobotPostureCheck = cobot_security.nodes.doctor_plugin:CobotPostureCheck",
        ],
        "ros2doctor.report": [
            "CobotPostureReport = cobot_security.nodes.doctor_plugin:CobotPostureReport",
        ],
    },
)
