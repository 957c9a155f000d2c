#!/bin/sh
# pydeps.sh DEST VENV SITE PYVER PLATFORM REQUIREMENTS CONSTRAINTS TRIM
# The pinned runtime Python dependencies as a layer tree at DEST: manylinux wheels installed with
# the venv's pip into DEST/SITE (for the image's CPython PYVER), byte-compiled with hash-based
# .pyc (valid whatever the mtimes in the layer), without the host-shebang scripts pip writes and
# without TRIM (space separated paths under SITE, globs allowed: parts the components never import).
set -eu
dest=$1 venv=$2 site=$3 pyver=$4 platform=$5 requirements=$6 constraints=$7 trim=${8:-}
# Everything below is removed with rm -rf: refuse paths that could reach outside DEST.
case $dest in /?*) ;; *) echo "pydeps.sh: DEST must be an absolute path, got '$dest'" >&2; exit 2 ;; esac
case $site in /?*) ;; *) echo "pydeps.sh: SITE must be an absolute path, got '$site'" >&2; exit 2 ;; esac
set -f  # split TRIM into words without expanding its globs here; they expand below, under SITE only
# shellcheck disable=SC2086
set -- $trim
set +f
for p in "$@"; do
  case $p in /* | *..*) echo "pydeps.sh: TRIM entry '$p' must be a relative path under SITE" >&2; exit 2 ;; esac
done
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp$site"
"$venv/bin/pip" install --quiet --no-compile --target "$tmp$site" --platform "$platform" \
  --only-binary=:all: --python-version "$pyver" --implementation cp -r "$requirements" -c "$constraints" >/dev/null
rm -rf "${tmp:?}${site:?}/bin" "${tmp:?}${site:?}"/*.dist-info/direct_url.json
for p in "$@"; do
  # shellcheck disable=SC2086  # the entry is a glob
  rm -rf "${tmp:?}${site:?}"/$p
done
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash -s "$tmp" -p / "$tmp$site" >/dev/null
rm -rf "$dest"
mv "$tmp" "$dest"
# keep only this build beside it
for old in "${dest%-*}"-*; do [ "$old" = "$dest" ] || rm -rf "$old"; done
