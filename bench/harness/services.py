"""Starting, watching and stopping the servers of the benchmark.

Every process is started in a new session (its own process group), its PID
is written to `<run>/pids/<name>.pid`, and it is stopped by signalling that
group, never by name. `cleanup()` (registered at exit and on SIGTERM/SIGINT)
stops whatever is still running; `bench/run` also has a shell trap that
reads the pid files as a last resort.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

LIVE: dict[int, "Service"] = {}
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, headers: dict | None = None, timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """GET on loopback only."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Service:
    def __init__(self, name: str, cmd: list[str], run_dir: Path, env: dict | None = None,
                 cwd: Path | None = None, log_name: str | None = None):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.run_dir = run_dir
        self.env = env
        self.cwd = cwd
        self.log_path = run_dir / "logs" / (log_name or f"{name}.log")
        self.pid_path = run_dir / "pids" / f"{name}.pid"
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.startup_seconds: float | None = None

    def start(self) -> "Service":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        log.close()
        self.pid_path.write_text(f"{self.proc.pid}\n")
        LIVE[self.proc.pid] = self
        return self

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, url: str, timeout: float = 60.0, ok=lambda status: status < 500) -> float:
        """Polls `url` until it answers; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_tail())
            try:
                status, _, _ = http_get(url, timeout=2)
                if ok(status):
                    self.startup_seconds = time.monotonic() - self.started_at
                    return self.startup_seconds
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout}s; see {self.log_path}:\n"
                           + self.log_tail())

    def wait_port(self, port: int, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n" + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    self.startup_seconds = time.monotonic() - self.started_at
                    return self.startup_seconds
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not listen on {port}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if not self.proc:
            return
        pid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        # Children left in the group (gunicorn workers, nginx workers).
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        LIVE.pop(pid, None)
        self.pid_path.unlink(missing_ok=True)

    def tree_pids(self) -> list[int]:
        if not self.alive():
            return []
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
        return out

    def tree_rss(self) -> int:
        total = 0
        for pid in self.tree_pids():
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * PAGE
            except (OSError, IndexError, ValueError):
                pass
        return total


class RssMonitor:
    """Samples a service's process-tree RSS in a thread; peak per phase."""

    def __init__(self, service: Service, interval: float = 0.1):
        self.service = service
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def sample(self) -> None:
        rss = self.service.tree_rss()
        if rss:
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)

    def start(self) -> "RssMonitor":
        self.thread.start()
        return self

    def set_phase(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def finish(self) -> dict:
        self.sample()
        self.stop_event.set()
        self.thread.join()
        mb = {k: round(v / 1e6, 1) for k, v in self.peaks.items()}
        throughput = [v for k, v in mb.items() if k.startswith("throughput")]
        if throughput:
            mb["throughput"] = max(throughput)
        mb["peak"] = max(mb.values()) if mb else None
        return mb


def cleanup() -> None:
    for service in list(LIVE.values()):
        try:
            service.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def install_cleanup() -> None:
    atexit.register(cleanup)

    def on_signal(signum, frame):
        cleanup()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


# ---------------------------------------------------------------- nginx

NGINX_CONF = """\
{user}
worker_processes {workers};
master_process {master_process};
daemon off;
pid {run}/nginx-{name}.pid;
error_log {run}/logs/nginx-{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{
        text/html html;
        application/vnd.pypi.simple.v1+json json;
        application/octet-stream whl;
        text/plain metadata;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {run}/nginx-{name}-tmp;
    log_format bench '$msec $request_method "$request_uri" $status $body_bytes_sent $connection';
    {access_log}
    # PEP 691 negotiation, as far as a static server can: JSON when the
    # client asks for it, HTML otherwise.
    map $http_accept $simple_index {{
        default index.html;
        "~*application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {tree};
        absolute_redirect off;
        location ~ ^/simple/[^/]+$ {{ return 301 $uri/; }}
        location /simple/ {{
            add_header Vary Accept;
            try_files $uri$simple_index $uri =404;
        }}
        location /files/ {{ }}
        # The file URLs of the legacy JSON API (bandersnatch wants /packages/).
        location ~ "^/packages/[0-9a-f]{{2}}/[0-9a-f]{{2}}/[0-9a-f]+/([^/]+)$" {{
            alias {tree}/files/$1;
        }}
        location /pypi/ {{
            root {json_api_root};
            default_type application/json;
            add_header X-PyPI-Last-Serial 1;
        }}
    }}
}}
"""


def nginx_service(name: str, run_dir: Path, tree: Path, port: int, access_log: bool,
                  json_api_root: Path | None = None, workers: str = "auto", master_process: str = "on") -> Service:
    conf = run_dir / f"nginx-{name}.conf"
    (run_dir / f"nginx-{name}-tmp").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    access = f"access_log {run_dir}/logs/nginx-{name}.access.log bench;" if access_log else "access_log off;"
    # Run as root (a root shell here), nginx's workers would drop to an
    # unprivileged user that cannot read a cache under /root: keep them as
    # the invoking user.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(
        user=user, workers=workers, master_process=master_process, run=run_dir, name=name, access_log=access, port=port, tree=tree,
        json_api_root=json_api_root or (run_dir / "json-api")))
    return Service(f"nginx-{name}", ["nginx", "-p", str(run_dir), "-c", str(conf), "-e",
                                     str(run_dir / "logs" / f"nginx-{name}.error.log")], run_dir)
