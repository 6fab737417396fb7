#!/usr/bin/env bash
# Installs everything, then runs the checks and the whole test suite: ruff, mypy (strict),
# the import-linter layer contract, and pytest (unit, integration as root, e2e with the real
# kubectl). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";          ruff check src tests bench
echo "== mypy";          mypy
echo "== import-linter"; lint-imports
echo "== pytest";        pytest -q -p no:cacheprovider "$@"
