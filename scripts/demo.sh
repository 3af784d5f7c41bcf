#!/usr/bin/env bash
# Main job on the built-in example workcell: set up, create the keystore from
# policies/workcell.yaml if it does not exist yet, and prove it against real DDS Security.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
VENV=${COBOT_SECURITY_VENV:-$ROOT/.venv}
CLI=("$VENV/bin/python" -m cobot_security.cli.main)
KEYSTORE=${KEYSTORE:-$ROOT/keystores/default}
POLICY=${POLICY:-$ROOT/policies/workcell.yaml}
cd "$ROOT"
"${CLI[@]}" policy lint --policy "$POLICY"
if [ ! -d "$KEYSTORE/enclaves" ]; then
  "${CLI[@]}" init --keystore "$KEYSTORE" --policy "$POLICY"
else
  echo "using the existing keystore $KEYSTORE (delete it or run 'cobot-security init --force' to rebuild)"
fi
"${CLI[@]}" enclave list --keystore "$KEYSTORE"
echo
echo "Proving enforcement with the real DDS Security plugins (one participant per enclave)..."
"${CLI[@]}" verify --keystore "$KEYSTORE" --policy "$POLICY" "$@"
echo
echo "Posture of the cell against the IEC 62443 controls (offline; gaps are shown, not hidden)..."
"${CLI[@]}" posture --keystore "$KEYSTORE" --policy "$POLICY"
