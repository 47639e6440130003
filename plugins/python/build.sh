#!/usr/bin/env bash
# Builds the Python robots (each folder here with an app.py) into OUT_DIR as
# NAME.wasm components with componentize-py, installed into the same cached
# venv as .ci/check-wit uses (${ROBOHOST_CACHE:-$HOME/.cache/robohost}/wit-check).
#
# Usage: plugins/python/build.sh OUT_DIR
set -euo pipefail

VERSION=0.25.1   # componentize-py, exact: the version .ci/check-wit checks
out=${1:?usage: plugins/python/build.sh OUT_DIR}
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
wit=$(cd "$here/../../wit/since_v0.1.0" && pwd)
cache=${ROBOHOST_CACHE:-$HOME/.cache/robohost}/wit-check
mkdir -p "$cache" "$out"

# One installer at a time, shared with .ci/check-wit.
exec 9>"$cache/.lock"
flock 9

venv=$cache/venv
cpy=$venv/bin/componentize-py
if [[ "$("$cpy" --version 2>/dev/null || true)" != "componentize-py $VERSION" ]]; then
    command -v python3 >/dev/null || { echo "build.sh: install Python 3 with venv and pip" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-input --disable-pip-version-check "componentize-py==$VERSION"
fi

for dir in "$here"/*/; do
    [[ -f $dir/app.py ]] || continue
    name=$(basename "$dir")
    (cd "$dir" && "$cpy" -d "$wit" -w robot componentize app -o "$out/$name.wasm" >/dev/null)
done
