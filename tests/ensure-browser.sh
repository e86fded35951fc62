#!/usr/bin/env bash
# Make sure headless Chromium and its driver are installed (Debian's chromium and chromium-driver), for the browser
# test of the try-it page (tests/test_page.py). Installs them with apt-get as root where they are missing; where that
# cannot be done it says why and exits 0: the test then skips saying so, or fails where SSD_REQUIRE_BROWSER=1 (CI).
set -euo pipefail
source "$(dirname "$0")/../docker/lib.sh"

# Debian bookworm's version; set to empty to take whatever the mirror has.
CHROMIUM_VERSION=${CHROMIUM_VERSION-150.0.7871.100-1~deb12u1}

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    step "headless browser: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
    step "no chromium/chromedriver, and no apt-get as root to install them: the browser test will skip (install Debian's chromium and chromium-driver)"
    exit 0
fi
packages=("chromium${CHROMIUM_VERSION:+=$CHROMIUM_VERSION}" "chromium-driver${CHROMIUM_VERSION:+=$CHROMIUM_VERSION}")
step "installing ${packages[*]} (apt-get, nice $SSD_NICE)"
if ! DEBIAN_FRONTEND=noninteractive nicely apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; then
    step "apt-get install failed; updating the package lists and trying again"
    nicely apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive nicely apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null \
        || { step "could not install ${packages[*]}: the browser test will skip (or fail where SSD_REQUIRE_BROWSER=1)"; exit 0; }
fi
step "headless browser: $(chromium --version 2>/dev/null | head -1)"
