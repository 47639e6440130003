#!/usr/bin/env bash
# Builds the JavaScript robots (each folder here with a robot.js) into
# OUT_DIR as NAME.wasm components with componentize-js, from the npm folder
# .ci/check-wit installs and caches (it is run once to install it if
# missing). WASI features the robots do not use are left out, so the
# components import no more than the host links.
#
# Usage: plugins/js/build.sh OUT_DIR
set -euo pipefail

out=${1:?usage: plugins/js/build.sh OUT_DIR}
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$here/../.." && pwd)
tool=${ROBOHOST_CACHE:-$HOME/.cache/robohost}/wit-check/js/node_modules/.bin/componentize-js
mkdir -p "$out"
if [[ ! -x $tool ]]; then
    bash "$repo/.ci/check-wit" >/dev/null
fi

for dir in "$here"/*/; do
    [[ -f $dir/robot.js ]] || continue
    name=$(basename "$dir")
    "$tool" "$dir/robot.js" --wit "$repo/wit/since_v0.1.0" -n robot \
        -d stdio random clocks http fetch-event -o "$out/$name.wasm" >/dev/null
done
