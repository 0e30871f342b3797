#!/usr/bin/env bash
# The GPU benchmark in one command, for a machine with an accelerator (or Mesa's lavapipe):
# builds xtask with the wgpu feature and prints one Markdown table of the workloads that matter
# on a GPU (SGD epoch, SGLD step with host- and device-resident noise and losses, a 4 × 200
# λ̂, an HVP and a 100-probe Hutchinson trace on MLP 784-256-256-10 / MNIST), timed on wgpu
# beside flex on the same machine: a warm-up round per backend (shader compilation and
# autotuning), then ROUNDS interleaved rounds, medians and ratios.
#
#   bash bench/gpu.sh            # 3 rounds
#   ROUNDS=1 bash bench/gpu.sh   # quicker
#
# Needs the MNIST files (../shared/datasets, $SLT_DATA_DIR, or `cargo xtask fetch-data`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slt-target}"
cargo build --release -p xtask --features wgpu
exec "$CARGO_TARGET_DIR/release/xtask" bench table --backend wgpu --beside flex --rounds "${ROUNDS:-3}" "$@"
