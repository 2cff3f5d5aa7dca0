#!/bin/bash
# The whole test suite: formatting, lints, unit tests, CLI tests, and the
# end-to-end tests that boot both 6.1 test kernels under qemu (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
# One thread: each end-to-end kernel boots once and its checks share it.
cargo test --release -- --include-ignored --test-threads=1
