#!/usr/bin/env bash
# The project's Snakemake, for DVC stages' commands: `snakemake` from PATH when there is one (an
# activated environment), else the .venv that scripts/setup.sh makes beside this folder, so that
# `.venv/bin/dvc repro` works without activating anything.
set -euo pipefail
if command -v snakemake >/dev/null 2>&1; then
    exec snakemake "$@"
fi
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/snakemake"
if [ -x "$venv" ]; then
    exec "$venv" "$@"
fi
echo "snakemake not found: run 'bash scripts/setup.sh' or activate the environment that has it" >&2
exit 127
