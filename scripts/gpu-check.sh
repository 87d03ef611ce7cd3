#!/usr/bin/env bash
# The neural engine on every device of this machine, in one table: the
# parity tests against the official vectors (DINOv2, U-Net, segment
# features, predictions v1.0/v1.1, one training step) and `dacon bench`
# (a 1920x1080-sized frame and one training step, random weights of the
# released ViT-S/14 and ViT-L/14 shapes).
#
# Usage: scripts/gpu-check.sh [DEVICE...]      (default: cpu cuda:0 wgpu)
# Needs ../shared/vectors/parity-v1 beside the repository, and for CUDA the
# NVIDIA driver (the toolkit is not needed at build time). Build features
# follow the devices asked for; FEATURES overrides (e.g. FEATURES=wgpu).
# Writes the table to stdout and every log under $OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

devices=("$@")
[ ${#devices[@]} -gt 0 ] || devices=(cpu cuda:0 wgpu)
features="${FEATURES:-}"
if [ -z "$features" ]; then
    for d in "${devices[@]}"; do
        case "$d" in
            cuda*) features="${features:+$features,}cuda" ;;
            wgpu*) features="${features:+$features,}wgpu" ;;
        esac
    done
    features=$(tr ',' '\n' <<<"$features" | sort -u | paste -sd, -)
fi
cli_features=$(tr ',' '\n' <<<"$features" | sed '/^$/d; s/^/dacon-cli\//' | paste -sd, -)
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
echo "features: ${features:-none}; logs: $out" >&2

feature_args=()
[ -z "$cli_features" ] || feature_args=(--features "$cli_features")
# One release build serves the tests and the bench.
cargo build --release --workspace --tests --bins "${feature_args[@]}" >"$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log" >&2; exit 1; }
bin=target/release/dacon

field() { # field FILE REGEX -> first capture group, or "-"
    sed -nE "s/$2/\1/p" "$1" | head -1 | grep . || echo "-"
}

rows=()
for d in "${devices[@]}"; do
    tag=${d//[:\/]/_}
    parity="pass"
    DACON_DEVICE="$d" DACON_REQUIRE_SHARED=1 cargo test --release --workspace "${feature_args[@]}" \
        --lib --bin dacon --test dino --test engine --test train --test smoke >"$out/parity-$tag.log" 2>&1 || parity="FAIL"
    passed=$(grep -Eo '[0-9]+ passed' "$out/parity-$tag.log" | awk '{s+=$1} END {print s+0}')
    cells=("$d" "$parity ($passed)")
    for m in vits14 vitl14; do
        "$bin" bench --device "$d" --synthetic-model "$m" --size 1920 --repeat 3 \
            >"$out/bench-$tag-$m.log" 2>&1 || true
        "$bin" bench --device "$d" --synthetic-model "$m" --train --steps 2 --size 512 \
            >"$out/train-$tag-$m.log" 2>&1 || true
        cells+=("$(field "$out/bench-$tag-$m.log" '.*DINOv2 ([0-9.]+) ms.*')"
            "$(field "$out/bench-$tag-$m.log" '.*U-Net ([0-9.]+) ms.*')"
            "$(field "$out/bench-$tag-$m.log" '^  whole frame +([0-9.]+) ms')"
            "$(field "$out/train-$tag-$m.log" '^  backbone run on both frames.* ([0-9.]+) s\/step.*')")
    done
    cells+=("$(field "$out/train-$tag-vits14.log" '^  U-Net forward \+ backward, 2 images +([0-9.]+) s$')")
    adapter=$(field "$out/bench-$tag-vits14.log" '^device: (.*)$')
    cells+=("$adapter")
    rows+=("$(IFS='|'; echo "${cells[*]}")")
done

echo "| device | parity (tests passed) | ViT-S DINOv2 ms | ViT-S U-Net ms | ViT-S frame ms | ViT-S train s/step | ViT-L DINOv2 ms | ViT-L U-Net ms | ViT-L frame ms | ViT-L train s/step | U-Net fwd+bwd 2x512 s | adapter |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
    echo "| ${r//|/ | } |"
done
