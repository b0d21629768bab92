#!/usr/bin/env bash
# pg_avatar's entry points. Each first sets up what it needs on a fresh
# Debian 12 machine (scripts/setup.sh: Debian packages, cargo-pgrx 0.18 and
# `cargo pgrx init` against PostgreSQL 15; nothing is installed twice), then
# runs one script of scripts/:
#
#   ./run.sh demo   build and install the extension, start a private
#                   cluster, show avatar_set, avatar_get and the route, and
#                   serve the demo application (scripts/demo.sh)
#   ./run.sh test   every test (scripts/test.sh): formatting and clippy
#                   with -D warnings on every crate; unit tests; #[pg_test]s;
#                   the integration tests against a primary, its hot
#                   standby and a restore cluster; a Python client; the
#                   route and the demo application in headless Chromium;
#                   stock Gravatar and Libravatar clients in Python and Node
#   ./run.sh bench  figures and same-run ratios against libvips, Pillow, a
#                   plain table and nginx (scripts/bench.sh)
#   ./run.sh fuzz [SECONDS]  fuzz the decoders, the encoders and the
#                   placeholders (scripts/fuzz.sh; default 30 minutes)
#   ./run.sh soak [SECONDS]  the route under load while a writer replaces
#                   avatars and the database restarts (scripts/soak.sh)
#
# Clusters listen on 127.0.0.1 only and live under target/; each script
# stops what it started, even when it fails.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup.sh
. scripts/clusters.sh

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
