#!/usr/bin/env bash
# Everything Paceline needs on a bare Debian machine, installed idempotently:
#   a Java 17-23 runtime and Maven (to assemble and run Apache Pulsar), chromium (the browser test),
#   Python >= 3.11 with venv,
#   then the project's virtual environment (.venv) with its dev tools.
# Re-running it is cheap: each step checks first. pip's cache serves quickfix (compiled once, ~7 min) and torch.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need_apt=()
java_ok() {
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ -n "$v" ] && [ "$v" -ge 17 ] && [ "$v" -lt 24 ]
}
java_ok || ls /usr/lib/jvm/*/bin/java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v make >/dev/null || need_apt+=(make)
# Debian's chromium: the live page's browser test drives it headless through Playwright.
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
"$PY" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install: ${need_apt[*]}" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.paceline-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  echo "bootstrap: installing Paceline and its dependencies into .venv (first time: quickfix compiles, torch downloads)"
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
.venv/bin/paceline broker provision
