#!/usr/bin/env bash
# Main job on the built-in example workcell: set up, then run the secure-workcell demo
# (`cobot-security demo`): keystore from policies/workcell.yaml if missing, proof with the real DDS
# Security plugins, the security stack and the example cell as real rclpy processes, a scripted
# scenario with a live posture table, and a report in reports/demo/ (Markdown, JSON, HTML).
# Arguments go to `cobot-security demo` (e.g. --duration 90, --keep-running).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
VENV=${COBOT_SECURITY_VENV:-$ROOT/.venv}
cd "$ROOT"
"$VENV/bin/cobot-security" policy lint --policy policies/workcell.yaml
exec "$VENV/bin/cobot-security" demo --keystore keystores/default --policy policies/workcell.yaml "$@"
