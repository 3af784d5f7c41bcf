#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12/13 machine (apt needs root; it is skipped when nothing is
# missing): Cyclone DDS with its DDS Security plugins from Debian, a venv in .venv, the Cyclone DDS
# Python binding built from source against Debian's library (the PyPI wheels lack the security
# plugins), rclpy (a sourced ROS 2 install if present, else the PyPI wheels), this package with the
# Zenoh wheel, and the Fast DDS proof agent compiled against Debian's libfastrtps (again: the PyPI
# Fast DDS has no security plugins), rebuilt only when its source changes.
# Safe to run again: each step checks before it acts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${COBOT_SECURITY_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
say() { printf '[setup] %s\n' "$*" >&2; }

# --- 1. Debian packages -------------------------------------------------------------------------
# chromium: the HTML report is checked in a real headless browser (test/demo/test_report_browser.py).
APT_PKGS=(cyclonedds-dev libfastrtps-dev g++ openssl gcc python3-dev python3-venv iproute2 nftables rsyslog chromium)
missing=()
for pkg in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
find_plugin() { compgen -G '/usr/lib/*/libddsc*/libdds_security_auth.so' || compgen -G '/usr/lib/*/libdds_security_auth.so' || true; }
if [ -z "$(find_plugin)" ]; then
  # Debian 12 ships the plugins in libddsc0debian; cyclonedds-dev pulls the right library elsewhere.
  if apt-cache show libddsc0debian >/dev/null 2>&1; then missing+=(libddsc0debian); fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} (run this script as root once, or apt-get install them)"
    exit 2
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" libddsc0debian >/dev/null 2>&1 \
    || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
LIBDIR=/usr/lib/$MULTIARCH
PLUGIN=$(find_plugin | grep -F "$LIBDIR/" | head -n 1 || true)
if [ -z "$PLUGIN" ]; then
  say "Cyclone DDS security plugins (libdds_security_auth.so) not found under $LIBDIR"
  exit 1
fi
PLUGIN_DIR=$(dirname "$PLUGIN")
DDS_VERSION=$(dpkg-query -W -f='${Version}' cyclonedds-dev | sed -e 's/-[^-]*$//' -e 's/^[0-9]*://' -e 's/+.*$//')

# --- 2. venv (sees a sourced ROS 2's rclpy when there is one) --------------------------------------
ROS_SOURCED=0
if [ -n "${ROS_DISTRO:-}" ] && "$PYTHON" -c 'import rclpy' >/dev/null 2>&1; then ROS_SOURCED=1; fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV (ROS 2 from the sourced install: $([ $ROS_SOURCED = 1 ] && echo yes || echo no))"
  if [ "$ROS_SOURCED" = 1 ]; then "$PYTHON" -m venv --system-site-packages "$VENV"; else "$PYTHON" -m venv "$VENV"; fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# --- 3. Cyclone DDS Python binding against Debian's library ----------------------------------------
HOME_PREFIX=$VENV/cyclonedds-home
mkdir -p "$HOME_PREFIX/lib"
ln -sfn /usr/include "$HOME_PREFIX/include"
ln -sfn /usr/bin "$HOME_PREFIX/bin"
for lib in libddsc.so libcycloneddsidl.so; do ln -sf "$LIBDIR/$lib" "$HOME_PREFIX/lib/$lib"; done
for lib in "$PLUGIN_DIR"/libdds_security_*.so; do ln -sf "$lib" "$HOME_PREFIX/lib/"; done
have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("cyclonedds"))' 2>/dev/null || true)
if [ "$have" != "$DDS_VERSION" ]; then
  say "building the cyclonedds $DDS_VERSION Python binding against Debian's libddsc (a minute or two)"
  CYCLONEDDS_HOME=$HOME_PREFIX "${PIP[@]}" install --no-binary cyclonedds "cyclonedds==$DDS_VERSION"
fi

# --- 4. rclpy and this package ----------------------------------------------------------------------
STAMP=$VENV/.cobot_security-setup
WANT=$(cat "$ROOT/setup.py" "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1)-$ROS_SOURCED
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  if [ "$ROS_SOURCED" = 0 ]; then
    say "installing rclpy and messages from the ROS 2 PyPI wheels"
    "${PIP[@]}" install ros-rclpy ros-rmw-fastrtps-cpp ros-diagnostic-msgs ros-std-msgs ros-std-srvs ros-test-msgs
  fi
  say "installing cobot_security (editable), the Zenoh wheel and test tools"
  "${PIP[@]}" install -e "$ROOT[test,zenoh]"
  echo "$WANT" > "$STAMP"
fi

# --- 5. Fast DDS proof agent (C++, cached under the venv by source hash) ------------------------------
AGENT=$("$VENV/bin/python" -m cobot_security.dds.fastdds_build) || { say "building the Fast DDS agent failed"; exit 1; }

# --- 6. ament layout in the venv, as colcon would install it ----------------------------------------
# launch_ros finds executables by package name in <prefix>/lib/cobot_security and the launch files in
# <prefix>/share/cobot_security; a pip install has neither. With AMENT_PREFIX_PATH naming the venv,
# `ros2 launch cobot_security ...` and launch_ros' Node(package="cobot_security") work (docs/launch.md).
INDEX=$VENV/share/ament_index/resource_index/packages
mkdir -p "$INDEX" "$VENV/share/cobot_security" "$VENV/lib/cobot_security"
[ -e "$INDEX/cobot_security" ] || : > "$INDEX/cobot_security"
for dir in launch policies; do
  # One link per file: `ros2 launch` finds launch files with os.walk, which does not enter linked dirs.
  [ -L "$VENV/share/cobot_security/$dir" ] && rm "$VENV/share/cobot_security/$dir"
  mkdir -p "$VENV/share/cobot_security/$dir"
  for file in "$ROOT/$dir"/*; do ln -sf "$file" "$VENV/share/cobot_security/$dir/"; done
done
ln -sf "$ROOT/package.xml" "$VENV/share/cobot_security/package.xml"
for exe in health_reporter supervisor keystore_manager demo_node cobot-security; do
  ln -sf "$VENV/bin/$exe" "$VENV/lib/cobot_security/$exe"
done
say "ready: $VENV (cyclonedds $DDS_VERSION, plugins in $PLUGIN_DIR; Fast DDS agent $(basename "$AGENT"))"
say "launch by package name: export AMENT_PREFIX_PATH=$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
