# Real servers for the shared-backend tests, sourced by scripts/test.
#
# start_test_servers installs (when missing) and starts, on 127.0.0.1 and
# on free ports, from a temporary directory:
#
# - PostgreSQL from Debian's package (apt-get when no server is installed),
#   as a non-root user (initdb and postgres refuse root), trust auth on
#   loopback only;
# - Garage, a real S3-compatible object store, built once with
#   `cargo install` and kept under $LARDER_TEST_CACHE (default
#   ~/.cache/larder-test) for the next run on the same machine; single
#   node, one bucket and one key set up by Garage itself at start-up.
#
# and exports for the tests (larder-testkit's `servers` module reads them):
#
#   LARDER_TEST_POSTGRES_URL           postgres://USER@127.0.0.1:PORT/postgres
#   LARDER_TEST_S3_ENDPOINT            http://127.0.0.1:PORT
#   LARDER_TEST_S3_REGION, LARDER_TEST_S3_BUCKET,
#   LARDER_TEST_S3_ACCESS_KEY_ID, LARDER_TEST_S3_SECRET_ACCESS_KEY
#
# A variable already set is kept and its server is not started (point the
# tests at servers of your own that way). stop_test_servers stops what
# start_test_servers started, by PID, and removes its directory; scripts/test
# calls it from an EXIT trap.
#
# Needs: bash, python3 (free ports), cargo (the first Garage build).

# The Garage release used as the test S3 server and the features built:
# sqlite as its metadata engine, nothing else (no metrics, no k2v, no lmdb).
LARDER_GARAGE_VERSION=2.5.0
LARDER_GARAGE_FEATURES=sqlite,bundled-libs

servers_dir=""
servers_pids=()

servers_log() { printf 'scripts/test: %s\n' "$*" >&2; }

# A TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:$1 (at most $2 s),
# failing early when process $3 died.
wait_for_port() {
    local port="$1" seconds="$2" pid="$3" i
    for ((i = 0; i < seconds * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Prints the last lines of a server's log and fails.
server_failed() {
    servers_log "$1 did not start; the end of $2:"
    tail -n 30 "$2" >&2 || true
    return 1
}

# --- PostgreSQL -------------------------------------------------------------

# The bin directory of the newest installed PostgreSQL server (Debian keeps
# them under /usr/lib/postgresql/VERSION/bin, off PATH; links elsewhere may
# point at a version that is not installed, so they are not trusted).
postgres_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/pg_ctl" ]] && printf '%s\n' "$dir"
}

install_postgres() {
    postgres_bindir >/dev/null && return 0
    if [[ "$(id -u)" != 0 ]]; then
        servers_log "no PostgreSQL server installed and not root: install Debian's 'postgresql' package"
        return 1
    fi
    servers_log "installing PostgreSQL (apt-get install postgresql)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    postgres_bindir >/dev/null || { servers_log "postgresql installed but no server binaries found"; return 1; }
}

# Runs a command as the user that owns the PostgreSQL data: the Debian
# package's 'postgres' user when we are root, ourselves otherwise.
as_postgres_user() {
    if [[ "$(id -u)" == 0 ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    if [[ -n "${LARDER_TEST_POSTGRES_URL:-}" ]]; then
        servers_log "PostgreSQL: using LARDER_TEST_POSTGRES_URL from the environment"
        return 0
    fi
    install_postgres
    local bin dir port user
    bin="$(postgres_bindir)"
    dir="$servers_dir/postgres"
    mkdir -p "$dir"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$dir"
        # The parent is ours (mode 0700 from mktemp): let the server user in.
        chmod 0711 "$servers_dir"
    fi
    port="$(free_port)"
    user=larder
    as_postgres_user "$bin/initdb" --pgdata="$dir/data" --username="$user" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$servers_dir/postgres-initdb.log" 2>&1 \
        || server_failed "initdb" "$servers_dir/postgres-initdb.log"
    # Tests want speed, not durability: no fsync. Unix sockets go to the
    # temporary directory (the system one may not exist or not be ours).
    as_postgres_user "$bin/pg_ctl" start --pgdata="$dir/data" --wait --timeout=60 --silent \
        --log="$dir/postgres.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >&2 || server_failed "PostgreSQL" "$dir/postgres.log"
    local pid
    pid="$(head -n 1 "$dir/data/postmaster.pid")"
    servers_pids+=("$pid")
    export LARDER_TEST_POSTGRES_URL="postgres://$user@127.0.0.1:$port/postgres"
    servers_log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $pid)"
}

# --- S3 (Garage) -------------------------------------------------------------

# The cached Garage binary, built on first use (tens of minutes on two cores;
# reused by every later run on the same machine).
garage_binary() {
    local cache="${LARDER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/larder-test}"
    local root="$cache/garage-$LARDER_GARAGE_VERSION-${LARDER_GARAGE_FEATURES//,/-}"
    if [[ ! -x "$root/bin/garage" ]]; then
        servers_log "building Garage $LARDER_GARAGE_VERSION into $root (once per machine)"
        mkdir -p "$root"
        # The build's own target dir, removed afterwards: only the binary is kept.
        nice -n 19 cargo install garage --version "$LARDER_GARAGE_VERSION" --locked --quiet \
            --no-default-features --features "$LARDER_GARAGE_FEATURES" \
            --root "$root" --target-dir "$root/target" >&2
        rm -rf "$root/target"
    fi
    printf '%s\n' "$root/bin/garage"
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start_s3() {
    if [[ -n "${LARDER_TEST_S3_ENDPOINT:-}" ]]; then
        servers_log "S3: using LARDER_TEST_S3_ENDPOINT from the environment"
        return 0
    fi
    local garage dir rpc_port s3_port
    garage="$(garage_binary)"
    dir="$servers_dir/garage"
    mkdir -p "$dir"
    rpc_port="$(free_port)"
    s3_port="$(free_port)"
    cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(random_hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
EOF
    export LARDER_TEST_S3_REGION=garage
    export LARDER_TEST_S3_BUCKET=larder-test
    export LARDER_TEST_S3_ACCESS_KEY_ID="GK$(random_hex 12)"
    export LARDER_TEST_S3_SECRET_ACCESS_KEY="$(random_hex 32)"
    # --single-node lays out the one-node cluster; --default-bucket creates
    # the bucket and the key (from the GARAGE_DEFAULT_* variables) before
    # the S3 port opens, so an open port means a usable bucket.
    GARAGE_DEFAULT_ACCESS_KEY="$LARDER_TEST_S3_ACCESS_KEY_ID" \
        GARAGE_DEFAULT_SECRET_KEY="$LARDER_TEST_S3_SECRET_ACCESS_KEY" \
        GARAGE_DEFAULT_BUCKET="$LARDER_TEST_S3_BUCKET" \
        RUST_LOG=warn \
        "$garage" -c "$dir/garage.toml" server --single-node --default-bucket >"$dir/garage.log" 2>&1 &
    local pid=$!
    servers_pids+=("$pid")
    wait_for_port "$s3_port" 60 "$pid" || server_failed "Garage" "$dir/garage.log"
    export LARDER_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
    servers_log "Garage $LARDER_GARAGE_VERSION (S3) on $LARDER_TEST_S3_ENDPOINT, bucket $LARDER_TEST_S3_BUCKET (pid $pid)"
}

# --- both --------------------------------------------------------------------

start_test_servers() {
    servers_dir="$(mktemp -d "${TMPDIR:-/tmp}/larder-test-servers.XXXXXX")"
    start_postgres
    start_s3
}

# Stops what start_test_servers started (SIGINT: PostgreSQL's fast
# shutdown; Garage stops on it too), waits up to 30 s, then removes the
# directory. Safe to call more than once.
stop_test_servers() {
    local pid i
    for pid in "${servers_pids[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
    for pid in "${servers_pids[@]}"; do
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    servers_pids=()
    if [[ -n "$servers_dir" ]]; then
        rm -rf "$servers_dir"
        servers_dir=""
    fi
}
