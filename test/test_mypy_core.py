"""Static typing: mypy finds no errors in the ROS-free core packages.

The adapters (nodes/, cli/, demo/, launch_integration/) depend on ROS type information that is not
always installed, so only the pure core is held to a clean mypy run here.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api as mypy_api

REPO = Path(__file__).resolve().parent.parent

#: The pure core: packages and modules that import no ROS, DDS or launch module.
CORE = (
    "policy", "keystore", "health", "posture", "network", "scan", "incident", "export", "launch_plan",
    "yaml_source.py", "names.py", "status.py", "errors.py", "clock.py", "checks.py", "atomic.py",
)


def test_mypy_core_is_clean(tmp_path: Path) -> None:
    targets = [str(REPO / "cobot_security" / name) for name in CORE]
    for target in targets:
        assert Path(target).exists(), target
    stdout, stderr, status = mypy_api.run(
        ["--ignore-missing-imports", "--cache-dir", str(tmp_path / "mypy_cache"), *targets]
    )
    if status != 0:
        print(stdout)
        print(stderr)
    assert status == 0, stdout + stderr
