# Headless Chromium for the browser tests of the web pages
# (crates/larder/tests/web_browser.rs), sourced by scripts/test.
#
# install_test_browser makes sure `chromium` and `chromedriver` are on PATH:
# when either is missing it installs Debian's `chromium` and
# `chromium-driver` packages with apt-get (as root, or through sudo when
# that needs no password); otherwise it says what to install and fails, as
# the browser tests would.

browser_log() { printf 'scripts/test: %s\n' "$*" >&2; }

install_test_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        if ! sudo -n true 2>/dev/null; then
            browser_log "no chromium/chromedriver and not root: install Debian's 'chromium' and 'chromium-driver' packages"
            return 1
        fi
        sudo=(sudo -n)
    fi
    browser_log "installing headless Chromium (apt-get install chromium chromium-driver)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >&2
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
        || { browser_log "chromium-driver installed but no chromium/chromedriver on PATH"; return 1; }
}
