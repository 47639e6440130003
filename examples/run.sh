#!/usr/bin/env bash
# Builds the plugins and runs the "assign by amount" robot on examples/deal.json
# in the real sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir "$target/plugins"
cargo run --quiet -p robohost -- robot run \
  --plugin "$target/plugins/wasm32-wasip2/release/assign_by_amount.wasm" \
  --robot assign_by_amount \
  --entity examples/deal.json \
  --props examples/assign-by-amount.json "$@"
