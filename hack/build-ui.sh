#!/usr/bin/env bash
# Builds the web console (src/kubevirt_runtime/ui/static) from its sources with the versions pinned in
# package-lock.json: `npm ci`, then esbuild. Installs Debian's nodejs/npm when Node is missing. Does nothing
# when the build is newer than every source file and the lockfile.
set -euo pipefail
cd "$(dirname "$0")/../src/kubevirt_runtime/ui/frontend"
out=../static/index.html
if [ -f "$out" ] && [ -z "$(find package.json package-lock.json build.mjs src -newer "$out" -print -quit)" ]; then
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "build-ui: installing Debian's nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
