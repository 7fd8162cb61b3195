# Shared by the benchmark scripts: source it, do not run it.

# Builds IMAGE from the host's static busybox (no registry can be reached) unless it exists.
ensure_busybox_image() {
    local image=$1 ctx
    docker image inspect "$image" >/dev/null 2>&1 && return 0
    ctx=$(mktemp -d)
    cp "$(command -v busybox)" "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$ctx/Dockerfile"
    docker build -q -t "$image" "$ctx" >/dev/null
    rm -rf "$ctx"
}
