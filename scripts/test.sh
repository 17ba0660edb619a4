#!/usr/bin/env bash
# The test command: install what is missing, then lint, type-check and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Test set-up only (not a user's install): the QEMU 10.0 source the runtime
# tests read and the bridge test builds, Debian's arm64 kernel and busybox for
# the guest boot test, and what the proxy and QEMU compile tests build with.
# The pinned Ghaf, microvm.nix and nixpkgs lib come from ../shared/third_party
# (tests/pinned.py unpacks them into the cache on first use).
bash scripts/fetch-qemu-source.sh
bash scripts/guest-boot-deps.sh
bash scripts/test-build-deps.sh
python3 -m ruff check ghafgen tests benchmarks
python3 -m ruff format --check ghafgen tests benchmarks
python3 -m mypy
# One worker per core; tests sharing a module-scoped fixture stay on one
# worker (tests/marks.py), so it is built once. `-n 0` runs them serially.
python3 -m pytest -q -n auto --dist loadgroup "$@"
