#!/usr/bin/env bash
# Makes .venv with the pinned dependencies and this package installed in place.
# Installs the few OS packages needed to build them (libvirt-python compiles against libvirt-dev) and
# the shellcheck package for make lint; fills the wheelhouse ansible-test sanity installs from offline.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for pkg in libvirt-dev pkg-config gcc python3-dev shellcheck; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  echo "bootstrap: installing OS packages: ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
hack/ansible-test-sanity.sh --prepare
touch .venv/.stamp
