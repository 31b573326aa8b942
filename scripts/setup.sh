#!/usr/bin/env bash
# Make this machine able to build and run priceperf: a Rust toolchain and a Vulkan (or
# other wgpu) driver. Where no Vulkan driver is installed and apt is available, install
# Mesa's CPU driver (lavapipe) so the suite runs without a GPU. Safe to run repeatedly.
set -euo pipefail

say() { echo "setup: $*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found; install Rust from https://rustup.rs (rustup, then rerun)"
    exit 1
fi

# Any one driver manifest will do. (One `ls` of every place failed whenever one of them held
# none, so the driver was reinstalled, apt-get update and all, on every run.)
have_vulkan_icd() {
    local f
    for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
        /usr/local/share/vulkan/icd.d/*.json \
        ${VK_DRIVER_FILES:+${VK_DRIVER_FILES//:/ }} ${VK_ICD_FILENAMES:+${VK_ICD_FILENAMES//:/ }}; do
        [ -e "$f" ] && return 0
    done
    return 1
}

if [ "$(uname -s)" = "Linux" ] && ! have_vulkan_icd; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
        say "no Vulkan driver found; installing Mesa's lavapipe (mesa-vulkan-drivers)"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    else
        say "no Vulkan driver found and no apt-get: install your GPU's Vulkan driver or Mesa's lavapipe"
    fi
fi
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
    say "installing the Vulkan loader (libvulkan1)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libvulkan1 >/dev/null
fi

# Optional: headless Chromium for the HTML report's browser test (tests/report_html.rs),
# which is skipped where no Chromium is installed. Installed only when asked for with
# PRICEPERF_INSTALL_CHROMIUM=1 (.ci/run asks); a failed install only skips that test.
have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || command -v google-chrome >/dev/null 2>&1 || [ -n "${PRICEPERF_CHROMIUM:-}" ]
}
if [ "${PRICEPERF_INSTALL_CHROMIUM:-0}" = "1" ] && ! have_chromium; then
    if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
        say "installing chromium for the HTML report's browser test (PRICEPERF_INSTALL_CHROMIUM=0 skips it)"
        if ! { timeout 120 $sudo apt-get update -qq \
                && DEBIAN_FRONTEND=noninteractive timeout 420 $sudo apt-get install -y -qq \
                    --no-install-recommends chromium fonts-liberation >/dev/null; }; then
            say "chromium could not be installed; the browser test will be skipped"
        fi
    else
        say "no apt-get: install Chromium yourself to run the browser test (it is skipped without)"
    fi
fi
