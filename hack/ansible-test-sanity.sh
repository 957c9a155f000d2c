#!/usr/bin/env bash
# ansible-test sanity on the collection as it ships: `ansible-galaxy collection build` (build_ignore applies),
# unpacked at <tmp>/ansible_collections/kubevirt/ops with tests/sanity (the ignore file) beside it.
#
#   hack/ansible-test-sanity.sh --prepare   fill the wheelhouse (make venv does; needs the package index)
#   hack/ansible-test-sanity.sh [ARGS]      run the sanity tests offline (ARGS go to ansible-test sanity)
#
# ansible-test makes one venv per test and bootstraps pip into it with a get-pip script it downloads from
# outside the package index. It runs here under its own HOME (.venv/ansible-test/home) whose pip.conf points
# at a wheelhouse of the pinned sanity requirements and pip itself, and whose bootstrap script
# (hack/ansible_test_get_pip.py) installs pip from that wheel: no network once --prepare has run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=$repo/.venv
python=$venv/bin/python
home=$venv/ansible-test/home
wheels=$venv/ansible-test/wheels
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pip_version=$("$python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
class Python: version = "'"$pyver"'"
print(get_venv_packages(Python())["pip"])')

if [ "${1:-}" = --prepare ]; then
  requirements=("$venv"/lib/python*/site-packages/ansible_test/_data/requirements/sanity.*.txt)
  mkdir -p "$wheels"
  "$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --dest "$wheels" \
    "pip==$pip_version" "${requirements[@]/#/--requirement=}"
  exit 0
fi

ls "$wheels"/pip-"$pip_version"-*.whl >/dev/null 2>&1 || { echo "no wheelhouse in $wheels: run make venv" >&2; exit 1; }
mkdir -p "$home/.config/pip" "$home/.ansible/test/cache"
printf '[global]\nno-index = true\nfind-links = %s\n' "$wheels" > "$home/.config/pip/pip.conf"
cp hack/ansible_test_get_pip.py "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/ansible-galaxy" collection build --force --output-path "$work" . >/dev/null
collection=$work/ansible_collections/kubevirt/ops
mkdir -p "$collection/tests"
tar -xzf "$work"/kubevirt-ops-*.tar.gz -C "$collection"
cp -r tests/sanity "$collection/tests/"
cd "$collection"
HOME=$home PATH=$venv/bin:$PATH ansible-test sanity --python "$pyver" --color no "$@"
