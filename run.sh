#!/usr/bin/env bash
# pg_avatar's two entry points, each doing all of its own set-up:
#   ./run.sh demo   build, install and show the extension on a private cluster
#   ./run.sh test   run every test
#   ./run.sh bench  compare with libvips, Pillow, a plain table and nginx
#   ./run.sh fuzz [SECONDS]  fuzz the image pipeline (default 30 minutes)
#   ./run.sh soak [SECONDS]  the route under load, a writer, and a database restart
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

case "${1:-}" in
    demo) ensure_toolchain; . scripts/demo.sh ;;
    test) ensure_toolchain; . scripts/test.sh ;;
    bench) PACKAGES+=("${BENCH_PACKAGES[@]}"); ensure_toolchain; . scripts/bench.sh ;;
    fuzz) ensure_toolchain; shift; . scripts/fuzz.sh "$@" ;;
    soak) PACKAGES+=(wrk curl); ensure_toolchain; shift; . scripts/soak.sh "$@" ;;
    *)
        echo "usage: $0 demo|test|bench|fuzz|soak [SECONDS]" >&2
        exit 2
        ;;
esac
