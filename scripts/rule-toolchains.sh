#!/usr/bin/env bash
# The tools that build JavaScript and Python rules, which the test suite runs
# for real (host/tests/all/rule_languages.rs):
#
#   componentize-js   `npm ci` at the repository root (pinned in package-lock.json)
#   componentize-py   pip, pinned, into a virtualenv under CALLQA_TOOLS_DIR
#                     (default ${XDG_CACHE_HOME:-~/.cache}/callqa/tools)
#
#   source scripts/rule-toolchains.sh   install what is missing and export
#                                       CALLQA_COMPONENTIZE_JS, CALLQA_COMPONENTIZE_PY
#
# scripts/test-servers.sh sources this, so the README's test command gets
# both tools too.

CALLQA_COMPONENTIZE_PY_VERSION=0.25.1

_callqa_rule_toolchains() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

  # npm ci also when the lock changed since the last install (npm keeps a
  # copy of what it installed in node_modules/.package-lock.json).
  local js="$root/node_modules/.bin/componentize-js"
  if [ ! -x "$js" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || { echo "npm is missing: install Node.js (18+) to build JavaScript rules" >&2; return 1; }
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi

  local tools="${CALLQA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/callqa/tools}"
  local venv="$tools/componentize-py-$CALLQA_COMPONENTIZE_PY_VERSION"
  local py="$venv/bin/componentize-py"
  if [ "$("$py" --version 2>/dev/null)" != "componentize-py $CALLQA_COMPONENTIZE_PY_VERSION" ]; then
    command -v python3 >/dev/null || { echo "python3 is missing: install Python 3 (with venv) to build Python rules" >&2; return 1; }
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)" >&2; return 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "componentize-py==$CALLQA_COMPONENTIZE_PY_VERSION" || return 1
  fi

  export CALLQA_COMPONENTIZE_JS="$js" CALLQA_COMPONENTIZE_PY="$py"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  _callqa_rule_toolchains || return 1
else
  set -euo pipefail
  _callqa_rule_toolchains
  echo "export CALLQA_COMPONENTIZE_JS=$CALLQA_COMPONENTIZE_JS CALLQA_COMPONENTIZE_PY=$CALLQA_COMPONENTIZE_PY"
fi
