#!/bin/sh
# wheel.sh DEST SOURCE VENV SITE
# The top layer: only our wheel (built from the checkout at SOURCE with the venv's pip, in a copy so
# the clone gets no build/ or egg-info), installed into DEST/SITE with its console scripts in
# DEST/usr/local/bin pointing at the image's /usr/bin/python3, byte-compiled with hash-based .pyc.
set -eu
dest=$1 src=$2 venv=$3 site=$4
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/build" "$tmp/wheel" "$tmp/root$site" "$tmp/root/usr/local/bin"
if [ ! -f "$src/src/kubevirt_runtime/ui/static/index.html" ]; then
  echo "wheel.sh: the web console is not built (src/kubevirt_runtime/ui/static): run 'make ui' first" >&2
  exit 1
fi
cp -a "$src/pyproject.toml" "$src/src" "$tmp/build/"
rm -rf "$tmp/build/src/kubevirt_runtime/ui/frontend"  # the sources and node_modules stay out of the image
[ -e "$src/README.md" ] && cp -a "$src/README.md" "$tmp/build/"
find "$tmp/build" -name __pycache__ -prune -exec rm -rf {} +
"$venv/bin/pip" wheel --quiet --no-deps -w "$tmp/wheel" "$tmp/build" >/dev/null
"$venv/bin/pip" install --quiet --no-compile --no-deps --target "$tmp/root$site" "$tmp"/wheel/*.whl >/dev/null
for script in "$tmp/root$site/bin"/*; do
  sed '1s|^#!.*|#!/usr/bin/python3|' "$script" >"$tmp/root/usr/local/bin/${script##*/}"
  chmod 0755 "$tmp/root/usr/local/bin/${script##*/}"
done
rm -rf "$tmp/root$site/bin" "$tmp/root$site"/*.dist-info/direct_url.json
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash -s "$tmp/root" -p / "$tmp/root$site" >/dev/null
rm -rf "$dest"
mv "$tmp/root" "$dest"
rm -rf "$tmp"
# keep only this build beside it
for old in "${dest%-*}"-*; do [ "$old" = "$dest" ] || rm -rf "$old"; done
