#!/usr/bin/env bash
# The GPU check, for a session lent a device machine (an NVIDIA H100 or H200): the quick
# suite (its f32 matmul at 4096 is issue 6's GPU target: at least 50% of the spec FP32
# peak; its GQA decode attentions search decode_coop_g, never yet run on a GPU), then the quick suite again with compiling ahead on helper devices
# (src/compile_ahead.rs, off on GPUs by default and never measured on one) and with empty
# shader and tuning caches of its own, so the two runs' "compile and upload" compare; with
# DECODE_TABLES=1 instead of the second run, every variant searched at two decode shapes;
# with QUICK_ONLY=1, the quick suite alone (QUICK_TIMEOUT seconds at most, 300 by default).
# Every result folder comes back in one archive. On a fresh H200 machine (2026-11-28): the
# quick suite 163 s, the two decode tables about 55 s (a --kernel run compiles every
# variant), plus a minute or two to start the machine; results/nvidia-h200-vulkan*/ hold
# earlier runs.
#
# Here, first:   bash ../shared/tools/prepare-device.sh    (release binary to .device/,
#                                                          Vulkan loader packages to .gl/)
#                strip .device/priceperf    (the release profile keeps debuginfo: 67 MB
#                                           unstripped, over the 64 MiB a call may carry)
# Then the device tool's run, carry [".gl", ".device"], timeout_s 600:
#                bash scripts/device-gpu.sh
# Back here:     mkdir -p results/gpu && tar xzf <files_at>/gpu-results.tar.gz -C results/gpu
#                then rename results/gpu/quick after the adapter and commit it.
#
# Each step has its own time limit inside the command's 600 s, so a slow step still leaves
# the archive; a partly written result folder is valid (rows are appended as they finish).
# $OUT brings back at most 8 files, two folders down: hence one archive.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:?run this through the device tool, which sets OUT}
bin=./.device/priceperf
[ -x "$bin" ] || { echo "no $bin: run ../shared/tools/prepare-device.sh here first" >&2; exit 2; }

# The machine is bare: unpack the carried Vulkan loader.
if ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$nv_icd" ] && ! "$bin" devices 2>/dev/null | grep -qi nvidia; then
    export VK_DRIVER_FILES=$nv_icd
fi

res=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv \
    >"$res/nvidia-smi.csv" 2>&1
"$bin" devices 2>&1 | tee "$res/devices.txt"
# Search and measure on the GPU; the cost table lists the instances that carry it.
# The whole log travels in the archive; the tool's reply shows its end.
date -u +"start %FT%TZ" | tee "$res/quick.log"
timeout "${QUICK_TIMEOUT:-300}" "$bin" run --suite quick --out "$res/quick" 2>&1 | tee -a "$res/quick.log" | tail -n 45
date -u +"end %FT%TZ" | tee -a "$res/quick.log"
if [ "${QUICK_ONLY:-0}" = 1 ]; then
    # The quick suite alone, for a session with little device time left.
    grep -hE "^time:" "$res/quick.log"
    rm -rf "$res"/*/criterion
    tar czf "$out/gpu-results.tar.gz" --exclude=.lock -C "$res" .
    ls -l "$out"
    exit 0
fi
if [ "${DECODE_TABLES:-0}" != 1 ]; then
    # The same suite with helpers compiling ahead, from empty caches again: the NVIDIA
    # driver's shader cache (__GL_SHADER_DISK_CACHE_PATH) and priceperf's tuning and peaks.
    mkdir -p "$res/ahead-nv-cache" "$res/ahead-cache"
    date -u +"start %FT%TZ" | tee "$res/quick_ahead.log"
    PRICEPERF_COMPILE_AHEAD=on __GL_SHADER_DISK_CACHE_PATH="$res/ahead-nv-cache" \
        PRICEPERF_CACHE_DIR="$res/ahead-cache" \
        timeout 250 "$bin" run --suite quick --out "$res/quick_ahead" >>"$res/quick_ahead.log" 2>&1
    date -u +"end %FT%TZ" | tee -a "$res/quick_ahead.log"
    grep -hE "^time:" "$res/quick.log" "$res/quick_ahead.log"
    rm -rf "$res/ahead-nv-cache" "$res/ahead-cache"
    rm -rf "$res"/*/criterion
    tar czf "$out/gpu-results.tar.gz" --exclude=.lock -C "$res" .
    ls -l "$out"
    exit 0
fi
# Two decode shapes far from the hardware in the 2026-11-27 H200 run, every variant
# measured in full: a llama-3.1-8b projection's gemv (397 GB/s there, against a 4.2 TB/s
# copy) and the KV cache at 8192 (134 GB/s in f32), where the gemv_coop and decode_coop
# kernels were written to close the gap.
timeout 45 "$bin" run --kernel matmul --shape m=1,n=4096,k=4096,transpose_b=1 --dtype f16 \
    --retune --out "$res/gemv4096" >"$res/gemv4096.log" 2>&1
timeout 75 "$bin" run --kernel attention --shape b=1,hq=32,hkv=8,sq=1,skv=8192,d=128,causal=1 \
    --dtype f16 --retune --out "$res/decode8192" >"$res/decode8192.log" 2>&1
# Their per-variant tables, for the reply's tail (the logs travel in the archive).
grep -hE "^ +(gemv|decode|naive|flash|tiled|reg|texture|subgroup)" "$res"/gemv4096.log "$res"/decode8192.log \
    | cut -c1-80
# criterion's own report folders are large; kernels.csv and samples.jsonl hold the figures.
rm -rf "$res"/*/criterion
tar czf "$out/gpu-results.tar.gz" --exclude=.lock -C "$res" .
ls -l "$out"
