#!/usr/bin/env bash
# pg_avatar's two entry points, each doing all of its own set-up:
#   ./run.sh demo   build, install and show the extension on a private cluster
#   ./run.sh test   run every test
#   ./run.sh bench  compare with libvips, Pillow, a plain table and nginx
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

case "${1:-}" in
    demo) ensure_toolchain; . scripts/demo.sh ;;
    test) ensure_toolchain; . scripts/test.sh ;;
    bench) PACKAGES+=("${BENCH_PACKAGES[@]}"); ensure_toolchain; . scripts/bench.sh ;;
    *)
        echo "usage: $0 demo|test|bench" >&2
        exit 2
        ;;
esac
