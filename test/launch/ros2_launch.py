"""``ros2 launch PACKAGE FILE name:=value ...`` (or ``ros2 launch PATH ...``) without the ros2 CLI.

ros2cli is not on PyPI.  Resolves the launch file by package name through the ament index (or
takes the path) and runs it with ros2launch's own API, exactly as the ``ros2 launch`` verb does;
exits with the launch's return code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ros2launch.api import get_share_file_path_from_package, launch_a_launch_file


def main(argv: list[str]) -> int:
    if Path(argv[0]).is_file():
        path, arguments = argv[0], argv[1:]
    else:
        package, file_name, *arguments = argv
        path = get_share_file_path_from_package(package_name=package, file_name=file_name)
    return int(launch_a_launch_file(launch_file_path=path, launch_file_arguments=arguments, noninteractive=True))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
