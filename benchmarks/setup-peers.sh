#!/usr/bin/env bash
# The peers' own environment: Perceval (GPL-3.0) and the `jira` library, never installed
# into stratmap's venv nor listed as its dependencies. Re-running is a no-op once built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
if [[ -x "$venv/bin/perceval" && -f "$venv/.installed" ]]; then
  exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "perceval==1.6.1" "jira==3.10.5"
touch "$venv/.installed"
