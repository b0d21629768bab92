# ./run.sh fuzz [SECONDS]: libFuzzer over the pure pipeline, in two
# targets: `pipeline` (decode, normalise, render: an upload's path, seeded
# with the image test cases of Debian's afl++-doc and the demo's uploads)
# for two thirds of the time, then `encoders` (every encoder and every
# placeholder, over sides, qualities, pixels and seeds). Crashers land in
# extension/pipeline/fuzz/artifacts/; copy each into fuzz/regressions/ once
# fixed.
seconds=${1:-1800}
fuzz=extension/pipeline/fuzz
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
seeds=target/fuzz-seeds
if [ ! -d "$seeds" ]; then
    step "seeds: afl++-doc's image test cases, and the demo's uploads"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q afl++-doc 2>/dev/null && dpkg-deb -x afl++-doc_*.deb x)
    mkdir -p "$seeds"
    find "$tmp/x" -path '*testcases/images/*' -type f -exec cp {} "$seeds/" \;
    rm -rf "$tmp"
    cargo run --quiet --release -p avatar-pipeline --features samples --example samples -- "$seeds/samples"
    mv "$seeds"/samples/* "$seeds/" && rmdir "$seeds/samples"
fi
cp "$fuzz"/regressions/* "$seeds/" 2>/dev/null || true
rm -f "$seeds/README.md"
mkdir -p "$fuzz/corpus" "$fuzz/corpus-encoders"
# Stable Rust: cargo-fuzz's sanitizer flags are unstable options, which
# RUSTC_BOOTSTRAP allows for this build only.
step "fuzzing decoders for $((seconds * 2 / 3)) s"
(cd extension/pipeline && RUSTC_BOOTSTRAP=1 cargo fuzz run -O pipeline fuzz/corpus "../../$seeds" -- \
    -max_total_time=$((seconds * 2 / 3)) -rss_limit_mb=4096 -timeout=20 -print_final_stats=1)
step "fuzzing encoders and placeholders for $((seconds / 3)) s"
(cd extension/pipeline && RUSTC_BOOTSTRAP=1 cargo fuzz run -O encoders fuzz/corpus-encoders -- \
    -max_total_time=$((seconds / 3)) -rss_limit_mb=4096 -timeout=20 -print_final_stats=1)
