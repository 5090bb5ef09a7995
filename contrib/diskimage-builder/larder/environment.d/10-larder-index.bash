# Sourced by diskimage-builder for every phase: exports the pip and uv
# settings that point at larder. Environment only: nothing lands in the image.

if [ -n "${DIB_LARDER_URL:-}" ]; then
    larder_args=(--url "$DIB_LARDER_URL")
    for url in ${DIB_LARDER_FALLBACK_URLS:-}; do
        larder_args+=(--url "$url")
    done
    [ -n "${DIB_LARDER_RETRIES:-}" ] && larder_args+=(--retries "$DIB_LARDER_RETRIES")
    [ -n "${DIB_LARDER_TIMEOUT:-}" ] && larder_args+=(--timeout "$DIB_LARDER_TIMEOUT")
    if ! larder_env=$(larder client-config --format env "${larder_args[@]}"); then
        echo "larder element: 'larder client-config' failed; is larder on the build host's PATH?" >&2
        return 1
    fi
    eval "$larder_env"
    unset larder_args larder_env url
fi
