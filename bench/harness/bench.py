#!/usr/bin/env python3
"""larder's benchmark: larder side by side with devpi-server, proxpi,
pypiserver, bandersnatch and nginx, on a hermetic fixture upstream on
127.0.0.1. Started by `bench/run`, which installs the system packages and
builds larder first; see bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixture  # noqa: E402
import instructions as callgrind  # noqa: E402
import peers as peers_mod  # noqa: E402
from fixture import BIG_PROJECT, clean_pip_env, read_requirements  # noqa: E402
from services import RssMonitor, Service, free_port, http_get, install_cleanup, nginx_service  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent

ACCEPT_HTML = "text/html"
ACCEPT_JSON = "application/vnd.pypi.simple.v1+json"
PAGE_PROJECT = "requests"
PEER_VENVS = ["devpi", "proxpi", "pypiserver", "bandersnatch", "clients"]

WORKLOADS = ["startup", "cold", "warm", "throughput", "offline", "herd", "far", "resolve", "mirror", "logging",
             "eviction", "s3", "nodes", "instructions"]
# What a run without --only runs: instructions (valgrind) only when asked for.
DEFAULT_WORKLOADS = [w for w in WORKLOADS if w != "instructions"]
# The rows whose bodies are large: a quarter as many requests of them are
# counted (they take longer: each still has to span enough of larder's idle
# work for its share to be taken off evenly).
LARGE_ROWS = {"big_html", "big_json", "wheel"}
LARGE_SHARE = 4
# Keep-alive connections the counted requests are spread over.
COUNTED_CONNECTIONS = 8


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class LoadSampler:
    """The 1-minute load average every 5 s over the run: the machine has 2
    cores, and anything else running on it shows up here."""

    def __init__(self):
        import threading
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self.stop.wait(5)

    def finish(self) -> dict:
        self.stop.set()
        self.thread.join()
        s = self.samples or [0.0]
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


# ------------------------------------------------------------------ setup

def find_python(minimum: tuple[int, int]) -> str | None:
    """A CPython >= minimum: on PATH, then under pyenv's root."""
    candidates = [f"python3.{m}" for m in range(20, minimum[1] - 1, -1)]
    found = [shutil.which(c) for c in candidates]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv_root.is_dir():
        for d in sorted(pyenv_root.iterdir(), reverse=True):
            m = re.match(r"^3\.(\d+)\.\d+$", d.name)
            if m and int(m.group(1)) >= minimum[1] and (d / "bin" / "python3").exists():
                found.append(str(d / "bin" / "python3"))
    for p in found:
        if not p:
            continue
        # pyenv shims exist for versions that are not selected: ask the
        # interpreter itself.
        r = subprocess.run([p, "-c", "import sys; print(sys.version_info[1])"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout) >= minimum[1]:
            return p
    return None


def python311() -> str:
    """The interpreter the installs target (cp311)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    p = shutil.which("python3.11")
    if not p:
        raise SystemExit("bench: python3.11 is needed (the fixture is built for cp311)")
    return p


def ensure_venv(venvs: Path, name: str, python: str) -> Path:
    """A venv per peer holding exactly the pins of bench/peers/<name>.txt;
    recreated when the pins or the interpreter change."""
    req = BENCH / "peers" / f"{name}.txt"
    venv = venvs / name
    stamp_want = hashlib.sha256(req.read_bytes() + python.encode()).hexdigest()
    stamp = venv / ".bench-stamp"
    if stamp.exists() and stamp.read_text() == stamp_want:
        return venv
    log(f"creating venv {venv} ({', '.join(read_requirements(req))})")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_TARGET", "PIP_PREFIX", "PIP_USER")}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(req)],
                   check=True, env=env)
    stamp.write_text(stamp_want)
    return venv


def tool_versions(ctx) -> dict:
    def out(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    versions = {
        "larder": out([ctx.larder_bin, "--version"]),
        # --larder-rev builds say which commit; a work-tree build is HEAD
        # plus whatever is uncommitted under crates/.
        "larder_commit": ctx.args.larder_commit or out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "larder_dirty": False if ctx.args.larder_commit else bool(subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "crates"],
            capture_output=True, text=True).stdout.strip()),
        "nginx": out(["nginx", "-v"]),
        "wrk": out(["wrk", "-v"]),
        "python": platform.python_version(),
    }
    for name in PEER_VENVS:
        req = BENCH / "peers" / f"{name}.txt"
        versions[name] = ", ".join(read_requirements(req))
    return versions


def machine_info() -> dict:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem / 2**30, 1),
            "kernel": platform.release(), "os": platform.platform()}


# ------------------------------------------------------------------ context

class Ctx:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.cache = Path(args.cache).expanduser().resolve()
        self.work = (BENCH / ".work").resolve()
        self.venvs = self.work / "venvs"
        stamp = args.run_id or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = self.work / "runs" / stamp
        self.run_dir.mkdir(parents=True)
        (self.run_dir / "logs").mkdir()
        self.larder_bin = str(Path(args.larder_bin).resolve())
        self.req = BENCH / ("requirements-quick.txt" if args.quick else "requirements.txt")
        self.req_count = len(read_requirements(self.req))
        # wrk takes whole seconds.
        self.wrk_seconds = max(1, round(args.wrk_seconds or (2 if args.quick else 10)))
        self.wrk_warmup = 1 if args.quick else 2
        self.repeat = args.repeat or (1 if args.quick else 3)
        self.counted_requests = args.counted_requests or (400 if args.quick else 2000)
        self.python311 = python311()
        self.tree: fixture.Tree | None = None
        self.upstream: Service | None = None
        self.upstream_port = 0
        self.larder_add_seconds = None
        self.fixture_stamp = ""

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/simple/"

    @property
    def pip(self) -> list[str]:
        return [str(self.venvs / "clients" / "bin" / "python"), "-m", "pip"]

    @property
    def uv(self) -> str:
        return str(self.venvs / "clients" / "bin" / "uv")

    def start_upstream(self) -> None:
        if not self.upstream_port:
            self.upstream_port = free_port()
        self.upstream = nginx_service("upstream", self.run_dir, self.tree.root, self.upstream_port,
                                      access_log=True, json_api_root=self.run_dir / "json-api", workers="2")
        self.upstream.start()
        self.upstream.wait_ready(f"http://127.0.0.1:{self.upstream_port}/simple/")

    def stop_upstream(self) -> None:
        if self.upstream:
            self.upstream.stop()
            self.upstream = None


class AppendedLog:
    """A log file some server appends to: what it gained between two marks."""

    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def lines_since(self, mark: int) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(mark)
                return f.read().decode("latin-1").splitlines()
        except OSError:
            return []


class AccessLog(AppendedLog):
    """Requests the fixture upstream saw between two marks."""

    def since(self, mark: int) -> list[tuple[str, str, int, str]]:
        out = []
        for line in self.lines_since(mark):
            m = re.match(r'^\S+ (\S+) "([^"]*)" (\d+) \d+ (\d+)', line)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
        return out


def summarize_upstream(entries) -> dict:
    paths = Counter(p.split("?")[0] for _, p, _, _ in entries)
    files = {p: n for p, n in paths.items() if p.startswith("/files/") and not p.endswith(".metadata")}
    metadata = {p: n for p, n in paths.items() if p.endswith(".metadata")}
    pages = {p: n for p, n in paths.items() if p.startswith("/simple/")}
    return {
        "requests": len(entries),
        "connections": len({c for *_, c in entries}),
        "pages": sum(pages.values()), "files": sum(files.values()), "metadata": sum(metadata.values()),
        "max_per_file": max(files.values(), default=0),
        "max_per_page": max(pages.values(), default=0),
        "max_per_metadata": max(metadata.values(), default=0),
        "files_fetched_more_than_once": sum(1 for n in files.values() if n > 1),
        "pages_fetched_more_than_once": sum(1 for n in pages.values() if n > 1),
    }


class ForwarderLog(AppendedLog):
    """Connections and requests the far-upstream forwarder saw between two marks."""

    def since(self, mark: int) -> dict:
        time.sleep(0.05)
        lines = self.lines_since(mark)
        conns = sum(1 for l in lines if l.startswith("conn "))
        reqs = [l.split(" ", 3)[3] for l in lines if l.startswith("req ") and len(l.split(" ", 3)) == 4]
        return {"connections": conns, "requests": len(reqs),
                "files": sum(1 for p in reqs if p.startswith("/files/") and not p.endswith(".metadata")),
                "pages": sum(1 for p in reqs if p.startswith("/simple/"))}


# ------------------------------------------------------------------ clients

def run_timed(cmd, env, timeout=1800, cwd=None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.monotonic()
    try:
        p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        p = subprocess.CompletedProcess(e.cmd, 124, e.stdout or "", f"timeout after {timeout}s")
    return time.monotonic() - t, p


def tail(p: subprocess.CompletedProcess, n: int = 6) -> str:
    text = (p.stderr or "") + (p.stdout or "")
    return "\n".join(text.strip().splitlines()[-n:])


def pip_download(ctx: Ctx, index_url: str, tag: str) -> dict:
    dest = ctx.run_dir / "downloads" / tag
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    seconds, p = run_timed(ctx.pip + [
        "download", "--no-cache-dir", "--only-binary=:all:", "--progress-bar", "off", "-q",
        "-d", dest, "--index-url", index_url, "-r", ctx.req], clean_pip_env())
    n = len(list(dest.glob("*.whl")))
    ok = p.returncode == 0 and n == ctx.req_count
    out = {"seconds": round(seconds, 3), "ok": ok}
    if not ok:
        out["error"] = f"exit {p.returncode}, {n}/{ctx.req_count} files: {tail(p)}"
    shutil.rmtree(dest, ignore_errors=True)
    return out


def uv_env(ctx: Ctx, tag: str) -> dict:
    cache = ctx.run_dir / "uv-cache" / tag
    shutil.rmtree(cache, ignore_errors=True)
    return clean_pip_env({"UV_CACHE_DIR": str(cache)})


def uv_compile(ctx: Ctx, index_url: str, tag: str) -> dict:
    seconds, p = run_timed([ctx.uv, "pip", "compile", "--no-cache", "--quiet", "--index-url", index_url,
                            "--python", ctx.python311, "--output-file", os.devnull, ctx.req], uv_env(ctx, tag))
    out = {"seconds": round(seconds, 3), "ok": p.returncode == 0}
    if p.returncode:
        out["error"] = tail(p)
    return out


def uv_install(ctx: Ctx, index_url: str, tag: str) -> dict:
    venv = ctx.run_dir / "venvs" / tag
    shutil.rmtree(venv, ignore_errors=True)
    env = uv_env(ctx, tag)
    subprocess.run([ctx.uv, "venv", "--quiet", "--python", ctx.python311, venv], check=True, env=env,
                   capture_output=True)
    seconds, p = run_timed([ctx.uv, "pip", "install", "--no-cache", "--quiet", "--index-url", index_url,
                            "--python", venv / "bin" / "python", "-r", ctx.req], env)
    out = {"seconds": round(seconds, 3), "ok": p.returncode == 0}
    if p.returncode:
        out["error"] = tail(p)
    shutil.rmtree(venv, ignore_errors=True)
    return out


def repeated(ctx: Ctx, fn) -> dict:
    """Runs a warm measurement ctx.repeat times; the row is the median run,
    with every run's seconds kept."""
    runs = [fn(i) for i in range(ctx.repeat)]
    if not all(r["ok"] for r in runs):
        return next(r for r in runs if not r["ok"])
    runs_sorted = sorted(runs, key=lambda r: r["seconds"])
    row = dict(runs_sorted[len(runs_sorted) // 2])
    if len(runs) > 1:
        row["runs"] = [r["seconds"] for r in runs]
    return row


# ------------------------------------------------------------------ wrk

def wrk(ctx: Ctx, url: str, headers: dict, seconds: float) -> dict:
    assert url.startswith("http://127.0.0.1:")
    cmd = ["wrk", "-t2", "-c64", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(HERE / "wrk-report.lua")]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^JSON (.*)$", p.stdout, re.M)
    if not m:
        return {"ok": False, "error": (p.stdout + p.stderr)[-400:]}
    r = json.loads(m.group(1))
    dur = r["duration_us"] / 1e6
    errors = sum(r["errors"].values())
    return {
        "ok": errors == 0 and r["requests"] > 0,
        "rps": round(r["requests"] / dur, 1),
        "p50_ms": round(r["p50_us"] / 1000, 3),
        "p99_ms": round(r["p99_us"] / 1000, 3),
        "mb_s": round(r["bytes"] / dur / 1e6, 1),
        "requests": r["requests"],
        "errors": r["errors"] if errors else None,
        **({"error": f"no request completed in {seconds} s"} if r["requests"] == 0 else {}),
    }


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def probe(url: str, headers: dict) -> tuple[int, str, int]:
    """(status, content-type, length) without following redirects."""
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), len(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), 0


def find_file_url(page_url: str, filename: str) -> str | None:
    status, _, body = http_get(page_url, {"Accept": ACCEPT_HTML}, timeout=120)
    if status != 200:
        return None
    for href in re.findall(r'href="([^"]+)"', body.decode("utf-8", "replace")):
        href = href.replace("&amp;", "&")
        path = urllib.parse.urlsplit(href).path
        if urllib.parse.unquote(path.rsplit("/", 1)[-1]) == filename:
            return urllib.parse.urljoin(page_url, href).split("#", 1)[0]
    return None


def throughput_targets(ctx: Ctx, peer) -> dict:
    """name -> (url, headers) for the throughput workloads at this peer."""
    wheel = ctx.wheel
    targets = {
        "page_html": (peer.page_url(PAGE_PROJECT), {"Accept": ACCEPT_HTML}),
        "page_json": (peer.page_url(PAGE_PROJECT), {"Accept": ACCEPT_JSON}),
        "big_html": (peer.page_url(BIG_PROJECT), {"Accept": ACCEPT_HTML}),
        "big_json": (peer.page_url(BIG_PROJECT), {"Accept": ACCEPT_JSON}),
    }
    if ctx.quick and peer.name in PYTHON_PEERS:
        targets = {k: v for k, v in targets.items() if not k.startswith("big_")}
    # Warm the pages (a proxy fetches them from upstream now).
    for url, headers in list(targets.values()):
        http_get(url, headers, timeout=300)
    file_url = find_file_url(peer.page_url(wheel.project), wheel.filename)
    if file_url:
        http_get(file_url, timeout=300)  # a proxy stores it now
        for _ in range(50):  # proxpi may still be finishing its download
            status, _, n = probe(file_url, {})
            if status == 200 and n == wheel.size:
                break
            time.sleep(0.2)
        targets["wheel"] = (file_url, {})
    return targets


def run_throughput(ctx: Ctx, peer, results: dict, mon: RssMonitor | None = None) -> None:
    targets = throughput_targets(ctx, peer)
    if ctx.quick and peer.name in PYTHON_PEERS:
        # A Python peer takes seconds per 3,000-file page: --quick leaves
        # those two rows to the full run.
        for name in ("big_html", "big_json"):
            targets.pop(name, None)
            results.setdefault(f"tp_{name}", {})[peer.name] = {"ok": None, "na": "skipped in --quick"}
    for name, (url, headers) in targets.items():
        if mon:
            mon.set_phase(f"throughput:{name}")
        status, ctype, size = probe(url, headers)
        row = {"status": status, "content_type": ctype.split(";")[0], "body_bytes": size}
        if status != 200:
            row.update(ok=False, error=f"HTTP {status} from {url}")
        else:
            wrk(ctx, url, headers, ctx.wrk_warmup)
            row.update(wrk(ctx, url, headers, ctx.wrk_seconds))
            if name.endswith("_json") and "json" not in ctype:
                row["note"] = f"served {ctype.split(';')[0]}, not JSON"
        results.setdefault(f"tp_{name}", {})[peer.name] = row
        log(f"  {peer.name:12} {name:10} {row.get('rps', '-'):>9} req/s  p99 {row.get('p99_ms', '-')} ms"
            + ("" if row.get("ok") else f"  FAILED {row.get('error') or row.get('errors')}"))
    if "wheel" not in targets:
        results.setdefault("tp_wheel", {})[peer.name] = {"ok": False, "error": "wheel link not found on the page"}


# ------------------------------------------------------------------ workloads

def loopback_peer(ctx: Ctx, cls, results: dict, access: AccessLog, do: set) -> None:
    """One peer, fresh: start-up, cold (proxies), warm pip/uv, throughput,
    offline (proxies); RSS over all of it."""
    peer = cls(ctx)
    upstream = ctx.upstream_url if peer.kind == "proxy" else None
    peer.start(upstream)
    mon = RssMonitor(peer.service).start()
    name = peer.name
    results.setdefault("startup", {})[name] = {"seconds": peer.startup, "prepare_seconds": peer.prepare_seconds}
    log(f"{name}: up in {peer.startup}s (prepare {peer.prepare_seconds}s) at {peer.index_url}")
    try:
        if "cold" in do or "warm" in do:
            if peer.kind == "proxy":
                mon.set_phase("cold")
                mark = access.mark()
                r = pip_download(ctx, peer.index_url, f"{name}-cold")
                r["upstream"] = summarize_upstream(access.since(mark))
                results.setdefault("cold_pip", {})[name] = r
                log(f"  cold pip download {r['seconds']}s ok={r['ok']} upstream={r['upstream']['requests']} req "
                    f"{r.get('error', '')}")
            mon.set_phase("warm")
            mark = access.mark()
            r = repeated(ctx, lambda i: pip_download(ctx, peer.index_url, f"{name}-warm-{i}"))
            r["upstream_requests"] = len(access.since(mark))
            results.setdefault("warm_pip", {})[name] = r
            log(f"  warm pip download {r['seconds']}s ok={r['ok']} {r.get('error', '')}")
            r = repeated(ctx, lambda i: uv_compile(ctx, peer.index_url, f"{name}-compile-{i}"))
            results.setdefault("warm_uv_compile", {})[name] = r
            log(f"  warm uv compile {r['seconds']}s ok={r['ok']} {r.get('error', '')}")
            r = repeated(ctx, lambda i: uv_install(ctx, peer.index_url, f"{name}-install-{i}"))
            results.setdefault("warm_uv_install", {})[name] = r
            log(f"  warm uv install {r['seconds']}s ok={r['ok']} {r.get('error', '')}")
        if "throughput" in do:
            mon.set_phase("throughput")
            run_throughput(ctx, peer, results, mon)
        if "offline" in do and peer.kind == "proxy":
            mon.set_phase("offline")
            ctx.stop_upstream()
            try:
                a = pip_download(ctx, peer.index_url, f"{name}-offline")
                b = uv_install(ctx, peer.index_url, f"{name}-offline")
                results.setdefault("offline", {})[name] = {
                    "ok": a["ok"] and b["ok"], "pip_download": a, "uv_install": b}
                log(f"  offline: pip {a['ok']} uv {b['ok']}")
            finally:
                ctx.start_upstream()
    finally:
        rss = mon.finish()
        results.setdefault("rss", {})[name] = rss
        log(f"  RSS MB {rss}")
        peer.stop()


def fresh_proxy(ctx: Ctx, cls):
    """A proxy with an empty cache (devpi: a new index on a shared server)."""
    return cls(ctx, shared=True) if cls is peers_mod.Devpi else cls(ctx)


def herd(ctx: Ctx, cls, results: dict, access: AccessLog, clients: int = 8) -> None:
    peer = fresh_proxy(ctx, cls).start(ctx.upstream_url, tag="herd")
    try:
        mark = access.mark()
        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            runs = list(pool.map(lambda i: pip_download(ctx, peer.index_url, f"{peer.name}-herd-{i}"), range(clients)))
        wall = time.monotonic() - t
        up = summarize_upstream(access.since(mark))
        ok = sum(r["ok"] for r in runs)
        row = {"clients_ok": ok, "clients": clients, "seconds": round(wall, 3), "upstream": up,
               "ok": ok == clients and up["max_per_file"] == 1}
        errors = [r["error"] for r in runs if not r["ok"]]
        if errors:
            row["error"] = errors[0]
        results.setdefault("herd", {})[peer.name] = row
        log(f"{peer.name}: herd {ok}/{clients} ok in {wall:.1f}s; upstream max/file {up['max_per_file']}, "
            f"max/page {up['max_per_page']}, files fetched >1: {up['files_fetched_more_than_once']}")
    finally:
        peer.stop()


def far(ctx: Ctx, classes, results: dict, rtt_ms: float, rate_mbit: float) -> None:
    port = free_port()
    flog = ctx.run_dir / "logs" / "forwarder.requests.log"
    fwd = Service("forwarder", [sys.executable, HERE / "forwarder.py", "--listen", f"127.0.0.1:{port}",
                                "--target", f"127.0.0.1:{ctx.upstream_port}", "--rtt-ms", str(rtt_ms),
                                "--rate-mbit", str(rate_mbit), "--log", flog], ctx.run_dir).start()
    fwd.wait_port(port)
    far_url = f"http://127.0.0.1:{port}/simple/"
    counter = ForwarderLog(flog)
    try:
        def measure(key, row, fn, index_url, tag):
            mark = counter.mark()
            r = fn(ctx, index_url, tag)
            r["upstream"] = counter.since(mark)
            results.setdefault(key, {})[row] = r
            log(f"  {row:8} {key:13} {r['seconds']:7.2f}s ok={r['ok']} upstream conns={r['upstream']['connections']} "
                f"reqs={r['upstream']['requests']}")
        for n in ("cold", "warm"):
            measure(f"far_{n}_pip", "direct", pip_download, far_url, f"direct-far-{n}")
            measure(f"far_{n}_uv", "direct", uv_install, far_url, f"direct-far-{n}-uv")
        for cls in classes:
            for fn, key in ((pip_download, "pip"), (uv_install, "uv")):
                peer = fresh_proxy(ctx, cls).start(far_url, tag=f"far-{key}")
                try:
                    measure(f"far_cold_{key}", peer.name, fn, peer.index_url, f"{peer.name}-far-cold-{key}")
                    measure(f"far_warm_{key}", peer.name, fn, peer.index_url, f"{peer.name}-far-warm-{key}")
                finally:
                    peer.stop()
    finally:
        fwd.stop()


def pip_dry_run(ctx: Ctx, index_url: str, tag: str) -> dict:
    seconds, p = run_timed(ctx.pip + [
        "install", "--dry-run", "--ignore-installed", "--no-cache-dir", "--only-binary=:all:",
        "--progress-bar", "off", "-q", "--index-url", index_url, "-r", ctx.req], clean_pip_env())
    out = {"seconds": round(seconds, 3), "ok": p.returncode == 0}
    if p.returncode:
        out["error"] = tail(p)
    return out


def summarize_resolve_upstream(lines: list[str], set_bytes: int) -> dict:
    """What a resolution took from the upstream (the fixture's access log
    lines): distribution-file bytes (whole files and ranges), against the
    install set's wheels."""
    entries = [m.groups() for m in (re.match(r'^\S+ (\S+) "([^"?]*)\S*" (\d+) (\d+) ', l) for l in lines) if m]
    files = [(method, int(status), int(sent)) for method, path, status, sent in entries if path.startswith("/files/")]
    file_bytes = sum(sent for *_, sent in files)
    return {"requests": len(entries), "file_bytes": file_bytes,
            "whole_files": sum(1 for method, status, _ in files if method == "GET" and status == 200),
            "ranges": sum(1 for _, status, _ in files if status == 206),
            "pct_of_set_wheels": round(100 * file_bytes / set_bytes, 1) if set_bytes else None}


def resolve(ctx: Ctx, classes, results: dict, rtt_ms: float, rate_mbit: float) -> None:
    """Cold `uv pip compile` and cold `pip install --dry-run` of the set,
    direct and through each proxy, against a far upstream that serves no
    PEP 658 metadata; the bytes of distribution files the upstream sent
    while resolving, against the set's wheels' total size."""
    root = fixture.without_metadata(ctx.tree, ctx.run_dir / "tree-nometa")
    nginx_port, port = free_port(), free_port()
    upstream = nginx_service("nometa", ctx.run_dir, root, nginx_port, access_log=True, workers="2").start()
    upstream.wait_ready(f"http://127.0.0.1:{nginx_port}/simple/")
    access = AccessLog(ctx.run_dir / "logs" / "nginx-nometa.access.log")
    fwd = Service("forwarder-nometa", [sys.executable, HERE / "forwarder.py", "--listen", f"127.0.0.1:{port}",
                                       "--target", f"127.0.0.1:{nginx_port}", "--rtt-ms", str(rtt_ms),
                                       "--rate-mbit", str(rate_mbit)], ctx.run_dir).start()
    fwd.wait_port(port)
    far_url = f"http://127.0.0.1:{port}/simple/"
    wanted = {(fixture.normalize(x.split("==")[0]), x.split("==")[1]) for x in read_requirements(ctx.req)}
    set_bytes = sum(d.size for d in ctx.tree.real_dists() if (d.project, d.version) in wanted)
    try:
        def measure(key, row, fn, index_url, tag):
            mark = access.mark()
            r = fn(ctx, index_url, tag)
            time.sleep(0.2)
            r["upstream"] = summarize_resolve_upstream(access.lines_since(mark), set_bytes)
            results.setdefault(key, {})[row] = r
            up = r["upstream"]
            log(f"  {row:8} {key:19} {r['seconds']:7.2f}s ok={r['ok']} upstream file bytes={up['file_bytes']} "
                f"({up['pct_of_set_wheels']}% of the set's wheels) whole={up['whole_files']} ranges={up['ranges']}")
        for fn, key in ((uv_compile, "resolve_uv_compile"), (pip_dry_run, "resolve_pip_dry_run")):
            measure(key, "direct", fn, far_url, f"direct-{key}")
            for cls in classes:
                peer = fresh_proxy(ctx, cls).start(far_url, tag=key)
                try:
                    measure(key, peer.name, fn, peer.index_url, f"{peer.name}-{key}")
                finally:
                    peer.stop()
    finally:
        fwd.stop()
        upstream.stop()


def mirror(ctx: Ctx, results: dict) -> None:
    projects = sorted({d.project for d in ctx.tree.real_dists()})
    files = ctx.tree.real_dists()
    total = sum(d.size for d in files)
    dest = ctx.run_dir / "data" / "mirror-larder"
    cmd = peers_mod.mirror_larder_command(ctx, ctx.upstream_url, dest, projects)
    if cmd is None:
        results.setdefault("mirror", {})["larder"] = {"ok": None, "na": "n/a: larder mirror not implemented yet"}
    else:
        seconds, p = run_timed(cmd, clean_pip_env({"RUST_LOG": "warn"}))
        results.setdefault("mirror", {})["larder"] = {
            "ok": p.returncode == 0, "seconds": round(seconds, 3),
            "files_s": round(len(files) / seconds, 1), "mb_s": round(total / seconds / 1e6, 1),
            **({"error": tail(p)} if p.returncode else {})}
    bs = ctx.venvs / "bandersnatch" / "bin" / "bandersnatch"
    if not bs.exists():
        results.setdefault("mirror", {})["bandersnatch"] = {"ok": None, "na": "n/a: no Python >= 3.12 for bandersnatch"}
        return
    dest = ctx.run_dir / "data" / "mirror-bandersnatch"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    conf = dest / "bandersnatch.conf"
    conf.write_text(f"""[mirror]
directory = {dest / 'mirror'}
master = http://127.0.0.1:{ctx.upstream_port}
allow-non-https = true
json = false
release-files = true
core-metadata = true
workers = 3
timeout = 30
global-timeout = 1800
stop-on-error = true
hash-index = false
simple-format = ALL
compare-method = hash
""")
    seconds, p = run_timed([bs, "-c", conf, "sync", *projects], clean_pip_env())
    got = [f for f in (dest / "mirror" / "web" / "packages").rglob("*.whl")] if (dest / "mirror").exists() else []
    ok = p.returncode == 0 and len(got) == len(files)
    row = {"ok": ok, "seconds": round(seconds, 3), "files": len(got), "mb": round(total / 1e6, 1),
           "files_s": round(len(got) / seconds, 1), "mb_s": round(sum(f.stat().st_size for f in got) / seconds / 1e6, 1)}
    if not ok:
        row["error"] = f"exit {p.returncode}, {len(got)}/{len(files)} files: {tail(p)}"
    results.setdefault("mirror", {})["bandersnatch"] = row
    log(f"bandersnatch sync: {row['seconds']}s, {row['files_s']} files/s, {row['mb_s']} MB/s ok={ok}")


def logging_cost(ctx: Ctx, results: dict) -> None:
    """larder's request log: page throughput at RUST_LOG=warn vs info."""
    rows = {}
    for level in ("warn", "info"):
        cls = type(f"LarderLocal_{level}", (peers_mod.LarderLocal,), {"rust_log": level, "name": "larder-local"})
        peer = cls(ctx).start(None, tag=f"log-{level}")
        try:
            url = peer.page_url(PAGE_PROJECT)
            http_get(url, {"Accept": ACCEPT_JSON})
            wrk(ctx, url, {"Accept": ACCEPT_JSON}, ctx.wrk_warmup)
            rows[f"RUST_LOG={level}"] = wrk(ctx, url, {"Accept": ACCEPT_JSON}, ctx.wrk_seconds)
        finally:
            peer.stop()
    warn, info = rows["RUST_LOG=warn"].get("rps"), rows["RUST_LOG=info"].get("rps")
    if warn and info:
        rows["info_over_warn"] = round(info / warn, 3)
    results["logging"] = rows
    log(f"larder page_json req/s: warn {warn}, info {info}")


def eviction_cost(ctx: Ctx, results: dict) -> None:
    """The bounded cache's access accounting: warm page (JSON) and warm
    wheel throughput of larder as a proxy without a cap, then with a cap
    large enough that nothing is evicted (every request notes its access,
    passes flush them). The runs alternate off, on, off, on; the median of
    each is kept."""
    runs: dict = {"off": {"page_json": [], "wheel": []}, "on": {"page_json": [], "wheel": []}}
    for round_ in range(2):
        for mode in ("off", "on"):
            extra = ["--max-cache-size", "1024G"] if mode == "on" else []
            cls = type(f"LarderEviction_{mode}", (peers_mod.Larder,),
                       {"serve_cmd": lambda self, extra=extra: peers_mod.Larder.serve_cmd(self) + extra})
            peer = cls(ctx).start(ctx.upstream_url, tag=f"evict-{mode}-{round_}")
            try:
                targets = throughput_targets(ctx, peer)
                for name in ("page_json", "wheel"):
                    url, headers = targets[name]
                    wrk(ctx, url, headers, ctx.wrk_warmup)
                    runs[mode][name].append(wrk(ctx, url, headers, ctx.wrk_seconds).get("rps"))
            finally:
                peer.stop()
    rows: dict = {}
    for name in ("page_json", "wheel"):
        off, on = (statistics.median(r for r in runs[m][name] if r) for m in ("off", "on"))
        rows[f"{name} cap off"] = {"rps": off, "runs": runs["off"][name]}
        rows[f"{name} cap on"] = {"rps": on, "runs": runs["on"][name]}
        rows[f"{name} on_over_off"] = round(on / off, 3)
    results["eviction"] = rows
    log(f"larder eviction accounting: {rows}")


def s3_env() -> dict | None:
    """The AWS variables for the S3 server of `scripts/test` (the
    LARDER_TEST_S3_* variables), None without one."""
    names = ["ENDPOINT", "REGION", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]
    got = {n: os.environ.get(f"LARDER_TEST_S3_{n}") for n in names}
    if not all(got.values()):
        return None
    return {"AWS_ENDPOINT_URL": got["ENDPOINT"], "AWS_REGION": got["REGION"], "AWS_ACCESS_KEY_ID": got["ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": got["SECRET_ACCESS_KEY"], "AWS_ALLOW_HTTP": "true", "bucket": got["BUCKET"]}


def psql(server_url: str, sql: str) -> None:
    """Runs one SQL statement on the test PostgreSQL server (Debian's psql)."""
    subprocess.run(["psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", server_url,
                    "--command", sql], check=True, stdout=subprocess.DEVNULL)


def larder_with(name: str, extra: list, env: dict):
    """The larder peer class with `extra` serve arguments and `env` (the
    AWS variables) on top of its own."""
    return type(name, (peers_mod.Larder,), {
        "serve_cmd": lambda self: peers_mod.Larder.serve_cmd(self) + extra,
        "make_service": lambda self: Service(f"{self.name}-{self.port}", self.serve_cmd(), self.ctx.run_dir,
                                             env=clean_pip_env({"RUST_LOG": self.rust_log, **env})),
    })


def two_nodes(ctx: Ctx, results: dict, access: AccessLog, clients: int = 8) -> None:
    """Two larder nodes on one bucket prefix and one PostgreSQL database
    (s3+pg, the servers of `scripts/test`): a herd of `clients` cold `pip
    download`s spread over both (upstream requests per file), then warm
    page (JSON) and warm ~1 MB wheel req/s of one node alone and of both at
    once (one wrk per node, summed)."""
    env = s3_env()
    pg_server = os.environ.get("LARDER_TEST_POSTGRES_URL")
    if env is None or not pg_server:
        results["nodes"] = {"na": "n/a: needs the S3 and PostgreSQL servers (LARDER_TEST_*, as scripts/test sets)"}
        return
    bucket = env.pop("bucket")
    tag = f"nodes-{os.getpid()}-{int(time.time())}"
    database = f"larder_bench_{tag.replace('-', '_')}"
    psql(pg_server, f'CREATE DATABASE "{database}"')
    extra = ["--blobs", f"s3://{bucket}/bench-{tag}",
             "--database", urllib.parse.urlsplit(pg_server)._replace(path=f"/{database}").geturl()]
    cls = larder_with("LarderNode", extra, env)
    nodes = []
    rows: dict = {}
    try:
        nodes = [cls(ctx).start(ctx.upstream_url, tag=f"node{i}") for i in (1, 2)]
        mark = access.mark()
        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            runs = list(pool.map(lambda i: pip_download(ctx, nodes[i % 2].index_url, f"nodes-herd-{i}"), range(clients)))
        up = summarize_upstream(access.since(mark))
        ok = sum(r["ok"] for r in runs)
        rows["herd"] = {"clients_ok": ok, "clients": clients, "seconds": round(time.monotonic() - t, 3),
                        "upstream_max_per_file": up["max_per_file"], "upstream_max_per_page": up["max_per_page"],
                        "ok": ok == clients and up["max_per_file"] == 1}
        log(f"nodes: herd over 2 nodes {ok}/{clients} ok; upstream max/file {up['max_per_file']}, "
            f"max/page {up['max_per_page']}")
        targets = [throughput_targets(ctx, node) for node in nodes]
        for name in ("page_json", "wheel"):
            for node_targets in targets:
                wrk(ctx, *node_targets[name], ctx.wrk_warmup)
            rows[f"{name} one node"] = wrk(ctx, *targets[0][name], ctx.wrk_seconds)
            with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
                both = list(pool.map(lambda node_targets: wrk(ctx, *node_targets[name], ctx.wrk_seconds), targets))
            rows[f"{name} two nodes"] = {"rps": round(sum(b.get("rps", 0) for b in both), 1),
                                         "ok": all(b.get("ok") for b in both), "per_node": both}
    finally:
        for node in nodes:
            node.stop()
        psql(pg_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    results["nodes"] = rows
    log(f"larder two nodes on s3+pg: {rows}")


def s3_blobs(ctx: Ctx, results: dict) -> None:
    """Warm page (JSON) and warm ~1 MB wheel throughput of larder as a
    proxy with its blobs in the data directory (the default), in an S3
    bucket (--blobs s3://), and in the bucket behind the local disk cache
    (--blob-cache-size), side by side in one run; with the test PostgreSQL
    server too, the last two again with the metadata in a fresh database
    there (--database postgres://, the shared backends of several nodes).
    The servers are the ones `scripts/test` starts (its LARDER_TEST_S3_*
    and LARDER_TEST_POSTGRES_URL variables); each run gets a prefix and a
    database of its own."""
    env = s3_env()
    if env is None:
        results["s3"] = {"na": "n/a: no S3 server (set LARDER_TEST_S3_*, as scripts/test does)"}
        return
    bucket = env.pop("bucket")
    pg_server = os.environ.get("LARDER_TEST_POSTGRES_URL")
    modes = ["default", "s3", "s3+cache"] + (["s3+pg", "s3+cache+pg"] if pg_server else [])
    rows: dict = {}
    for mode in modes:
        tag = f"{mode.replace('+', '-')}-{os.getpid()}-{int(time.time())}"
        extra = ["--blobs", f"s3://{bucket}/bench-{tag}"] if mode != "default" else []
        if "+cache" in mode:
            extra += ["--blob-cache-size", "2G"]
        database = f"larder_bench_{tag.replace('-', '_')}" if mode.endswith("+pg") else None
        if database:
            psql(pg_server, f'CREATE DATABASE "{database}"')
            extra += ["--database", urllib.parse.urlsplit(pg_server)._replace(path=f"/{database}").geturl()]
        cls = larder_with(f"LarderBlobs_{mode}", extra, env)
        try:
            peer = cls(ctx).start(ctx.upstream_url, tag=f"blobs-{mode}")
            try:
                targets = throughput_targets(ctx, peer)
                time.sleep(1)  # the disk cache copies the wheel in the background
                for name in ("page_json", "wheel"):
                    url, headers = targets[name]
                    wrk(ctx, url, headers, ctx.wrk_warmup)
                    rows[f"{name} {mode}"] = wrk(ctx, url, headers, ctx.wrk_seconds)
            finally:
                peer.stop()
        finally:
            if database:
                psql(pg_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    results["s3"] = rows
    log(f"larder blobs default / s3 / s3+cache (/ with PostgreSQL): {rows}")


def instructions(ctx: Ctx, classes, results: dict) -> None:
    """Instructions per warm request of each throughput row, counted by
    callgrind (see harness/instructions.py): nginx as one process (no
    master), larder as a proxy, each process whole. A quarter as many
    requests of the large rows; the idle rate is taken off."""
    out_dir = ctx.run_dir / "callgrind"
    for cls in classes:
        if cls.python:
            continue  # a Python server under valgrind takes minutes per page
        name = cls.name
        counted_cls = type(f"{cls.__name__}Counted", (cls,),
                           {"wrapper": callgrind.command(out_dir, name), "master_process": "off"})
        peer = counted_cls(ctx).start(ctx.upstream_url if cls.kind == "proxy" else None, tag="callgrind")
        try:
            targets = throughput_targets(ctx, peer)
            pid = peer.service.pid
            idle = callgrind.idle_rate(out_dir, name, pid)
            for row, (url, headers) in targets.items():
                requests = ctx.counted_requests // (LARGE_SHARE if row in LARGE_ROWS else 1)
                with callgrind.Connections(url, headers, COUNTED_CONNECTIONS) as connections:
                    connections.send(4 * COUNTED_CONNECTIONS)
                    total, seconds = callgrind.counted(out_dir, name, pid, lambda: connections.send(requests))
                result = {"ok": True, "ir_per_request": round((total - idle * seconds) / requests),
                          "raw_ir_per_request": round(total / requests), "requests": requests,
                          "idle_ir_per_s": round(idle), "seconds": round(seconds, 2)}
                results.setdefault(f"ir_{row}", {})[name] = result
                log(f"  {name:12} {row:10} {result['ir_per_request']:>9,} instructions per request "
                    f"(raw {result['raw_ir_per_request']:,}, idle {result['idle_ir_per_s']:,}/s over {seconds:.1f} s)")
        finally:
            peer.stop()


# ------------------------------------------------------------------ report

LOWER = {"startup", "cold_pip", "warm_pip", "warm_uv_compile", "warm_uv_install", "rss",
         "far_cold_pip", "far_warm_pip", "far_cold_uv", "far_warm_uv", "herd",
         "resolve_uv_compile", "resolve_pip_dry_run",
         "ir_page_html", "ir_page_json", "ir_big_html", "ir_big_json", "ir_wheel"}
TITLES = {
    "startup": "Start-up: seconds until the server answers (prepare = init/add before start)",
    "cold_pip": "Cold `pip download` of the set through the proxy (files come from the fixture upstream)",
    "warm_pip": "Warm `pip download` of the set",
    "warm_uv_compile": "Warm `uv pip compile` of the set (--no-cache)",
    "warm_uv_install": "Warm `uv pip install --no-cache` of the set into a fresh venv",
    "tp_page_html": f"wrk: warm /simple/{PAGE_PROJECT}/ as HTML",
    "tp_page_json": f"wrk: warm /simple/{PAGE_PROJECT}/ as PEP 691 JSON",
    "tp_big_html": f"wrk: warm /simple/{BIG_PROJECT}/ ({fixture.BIG_FILES} files) as HTML",
    "tp_big_json": f"wrk: warm /simple/{BIG_PROJECT}/ ({fixture.BIG_FILES} files) as JSON",
    "tp_wheel": "wrk: a warm ~1 MB wheel",
    "ir_page_html": f"callgrind: instructions per warm /simple/{PAGE_PROJECT}/ as HTML",
    "ir_page_json": f"callgrind: instructions per warm /simple/{PAGE_PROJECT}/ as PEP 691 JSON",
    "ir_big_html": f"callgrind: instructions per warm /simple/{BIG_PROJECT}/ ({fixture.BIG_FILES} files) as HTML",
    "ir_big_json": f"callgrind: instructions per warm /simple/{BIG_PROJECT}/ ({fixture.BIG_FILES} files) as JSON",
    "ir_wheel": "callgrind: instructions per warm ~1 MB wheel",
    "rss": "Peak RSS of the server process tree, MB (throughput phase / whole run)",
    "far_cold_pip": "Far upstream: cold `pip download`",
    "far_warm_pip": "Far upstream: warm `pip download`",
    "far_cold_uv": "Far upstream: cold `uv pip install --no-cache`",
    "far_warm_uv": "Far upstream: warm `uv pip install --no-cache`",
    "resolve_uv_compile": "Far upstream without PEP 658 metadata: cold `uv pip compile` of the set",
    "resolve_pip_dry_run": "Far upstream without PEP 658 metadata: cold `pip install --dry-run` of the set",
    "offline": "Offline: fixture upstream stopped, warm pip download + uv install",
    "herd": "Thundering herd: 8 concurrent cold `pip download`s",
    "mirror": "Mirror the fixture projects (all files)",
    "logging": "larder request logging cost (larder-local, page JSON)",
    "eviction": "larder bounded-cache accounting cost (proxy, --max-cache-size 1024G vs none)",
    "s3": "larder blobs in the data directory vs an S3 bucket (--blobs s3://), without and with --blob-cache-size, "
          "and with the metadata on PostgreSQL (--database postgres://)",
    "nodes": "Two larder nodes on one bucket and one PostgreSQL database (s3+pg): warm req/s of one node and of both "
             "at once, and a herd of 8 cold `pip download`s spread over both",
}
ROW_ORDER = ["nginx", "direct", "larder", "larder-local", "devpi", "proxpi", "pypiserver", "bandersnatch"]
PYTHON_PEERS = {"devpi", "proxpi", "pypiserver", "bandersnatch"}


def main_value(workload: str, row: dict):
    if not isinstance(row, dict) or row.get("ok") is False:
        return None
    if workload.startswith("tp_"):
        return row.get("rps")
    if workload.startswith("ir_"):
        return row.get("ir_per_request")
    if workload == "rss":
        return row.get("throughput") or row.get("peak")
    if workload == "herd":
        return row.get("seconds")
    if workload == "mirror":
        return row.get("files_s")
    return row.get("seconds")


def advantage(workload: str, larder_value, other_value):
    """How many times better larder is (>1 better, <1 worse)."""
    if not larder_value or not other_value:
        return None
    if workload in LOWER:
        return round(other_value / larder_value, 2)
    return round(larder_value / other_value, 2)


def compute_ratios(results: dict) -> dict:
    ratios = {}
    for workload, rows in results.items():
        if workload in ("offline", "logging", "eviction", "s3", "nodes"):
            continue
        values = {name: main_value(workload, row) for name, row in rows.items()}
        peers_present = {n: v for n, v in values.items() if n in PYTHON_PEERS and v}
        if peers_present:
            pick = min if workload in LOWER else max
            best_name = pick(peers_present, key=peers_present.get)
        else:
            best_name = None
        for larder_row in ("larder", "larder-local"):
            lv = values.get(larder_row)
            if lv is None:
                continue
            ratios.setdefault(workload, {})[larder_row] = {
                "vs_nginx": advantage(workload, lv, values.get("nginx")),
                "vs_direct": advantage(workload, lv, values.get("direct")),
                "vs_best_peer": advantage(workload, lv, values.get(best_name)) if best_name else None,
                "best_peer": best_name,
            }
    return ratios


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}{unit}" if v < 100 else f"{v:,.0f}{unit}"
    return f"{v}{unit}"


def describe(workload: str, row: dict) -> list[str]:
    if row.get("na"):
        return [row["na"]]
    if row.get("ok") is False and workload not in ("offline", "herd"):
        return ["FAILED: " + str(row.get("error") or row.get("errors") or "")[:110].replace("\n", " | ")]
    if workload.startswith("tp_"):
        extra = f"  ({row['note']})" if row.get("note") else ""
        return [f"{fmt(row.get('rps'))} req/s", f"p50 {fmt(row.get('p50_ms'))} ms", f"p99 {fmt(row.get('p99_ms'))} ms",
                f"{fmt(row.get('mb_s'))} MB/s{extra}"]
    if workload == "rss":
        return [f"{fmt(row.get('throughput'))} MB", f"peak {fmt(row.get('peak'))} MB"]
    if workload.startswith("ir_"):
        return [f"{row['ir_per_request']:,} instructions per request", f"raw {row['raw_ir_per_request']:,}",
                f"{row['requests']} requests", f"idle {row['idle_ir_per_s']:,}/s"]
    if workload == "startup":
        return [f"{fmt(row.get('seconds'))} s", f"prepare {fmt(row.get('prepare_seconds'))} s"]
    if workload == "offline":
        return ["yes" if row.get("ok") else "NO", f"pip {fmt(row['pip_download']['ok'])}, uv {fmt(row['uv_install']['ok'])}"]
    if workload == "herd":
        up = row["upstream"]
        return [f"{row['clients_ok']}/{row['clients']} ok", f"{fmt(row['seconds'])} s",
                f"upstream max/file {up['max_per_file']}", f"max/page {up['max_per_page']}",
                f"{up['requests']} req"]
    if workload == "mirror":
        return [f"{fmt(row.get('files_s'))} files/s", f"{fmt(row.get('mb_s'))} MB/s", f"{fmt(row.get('seconds'))} s"]
    out = [f"{fmt(row.get('seconds'))} s"]
    up = row.get("upstream")
    if isinstance(up, dict) and "file_bytes" in up:
        out.append(f"upstream file bytes {fmt(round(up['file_bytes'] / 1e6, 2))} MB = {fmt(up['pct_of_set_wheels'])}% "
                   f"of the set's wheels ({up['whole_files']} whole, {up['ranges']} ranges)")
    elif isinstance(up, dict):
        out.append(f"upstream {up.get('connections')} conn / {up.get('requests')} req")
    return out


def render_tables(results: dict, ratios: dict) -> str:
    lines = []
    for workload, rows in results.items():
        if workload in ("logging", "eviction", "s3", "nodes"):
            lines.append(f"\n## {TITLES[workload]}")
            for k, v in rows.items():
                if not isinstance(v, dict):
                    lines.append(f"  {k:24} {fmt(v)}")
                elif "rps" in v:
                    lines.append(f"  {k:24} {fmt(v.get('rps'))} req/s")
                else:
                    lines.append(f"  {k:24} " + ", ".join(f"{field} {fmt(value)}" for field, value in v.items()))
            continue
        lines.append(f"\n## {TITLES.get(workload, workload)}")
        names = sorted(rows, key=lambda n: ROW_ORDER.index(n) if n in ROW_ORDER else 99)
        for name in names:
            cols = describe(workload, rows[name])
            r = ratios.get(workload, {}).get(name)
            if r:
                parts = []
                if r["vs_nginx"] is not None:
                    parts.append(f"{r['vs_nginx']}x nginx")
                if r["vs_direct"] is not None:
                    parts.append(f"{r['vs_direct']}x direct")
                if r["vs_best_peer"] is not None:
                    parts.append(f"{r['vs_best_peer']}x best peer ({r['best_peer']})")
                if parts:
                    cols.append("larder " + ", ".join(parts))
            lines.append(f"  {name:13} " + " | ".join(cols))
    lines.append("\n(larder NNx: how many times better larder is; >1 better, <1 worse. "
                 "For times and memory that is other/larder, for req/s larder/other.)")
    return "\n".join(lines)


def evaluate_targets(results: dict, ratios: dict) -> list[dict]:
    """The targets of issue 6, met or missed, from this run's figures."""
    out = []

    def add(target, value, met, note=""):
        out.append({"target": target, "measured": value, "met": met, **({"note": note} if note else {})})

    for w in ("tp_page_html", "tp_page_json", "tp_big_html", "tp_big_json", "tp_wheel"):
        r = ratios.get(w, {}).get("larder")
        if r:
            add(f"{w}: >= 0.8x nginx", r["vs_nginx"], r["vs_nginx"] is not None and r["vs_nginx"] >= 0.8)
            add(f"{w}: >= 10x best Python peer", r["vs_best_peer"],
                r["vs_best_peer"] is not None and r["vs_best_peer"] >= 10)
    for w in ("warm_pip", "warm_uv_install"):
        r = ratios.get(w, {}).get("larder")
        if r:
            add(f"{w}: no slower than nginx (>= 1.0x, 5% noise allowed)", r["vs_nginx"],
                r["vs_nginx"] is not None and r["vs_nginx"] >= 0.95)
    r = ratios.get("cold_pip", {}).get("larder")
    if r:
        add("cold_pip: no slower than the fastest peer", r["vs_best_peer"],
            r["vs_best_peer"] is not None and r["vs_best_peer"] >= 0.95)
    for w in ("far_cold_pip", "far_cold_uv"):
        r = ratios.get(w, {}).get("larder")
        if r:
            add(f"{w}: no slower than direct", r["vs_direct"], r["vs_direct"] is not None and r["vs_direct"] >= 0.95)
    for w in ("far_warm_pip", "far_warm_uv"):
        r = ratios.get(w, {}).get("larder")
        if r:
            add(f"{w}: at most half of direct (>= 2x)", r["vs_direct"], r["vs_direct"] is not None and r["vs_direct"] >= 2)
    for w in ("resolve_uv_compile", "resolve_pip_dry_run"):
        r = ratios.get(w, {}).get("larder")
        if r:
            add(f"{w}: no slower than direct (5% noise allowed)", r["vs_direct"],
                r["vs_direct"] is not None and r["vs_direct"] >= 0.95)
        row = results.get(w, {}).get("larder")
        if row and row.get("ok"):
            pct = row["upstream"]["pct_of_set_wheels"]
            add(f"{w}: upstream file bytes while resolving <= 10% of the set's wheels", pct, pct is not None and pct <= 10)
    rss = results.get("rss", {}).get("larder")
    if rss:
        v = rss.get("throughput") or rss.get("peak")
        add("rss: under 50 MB under throughput load", v, v is not None and v < 50)
        r = ratios.get("rss", {}).get("larder")
        if r:
            add("rss: >= 5x lower than best Python peer", r["vs_best_peer"],
                r["vs_best_peer"] is not None and r["vs_best_peer"] >= 5)
    h = results.get("herd", {}).get("larder")
    if h:
        add("herd: exactly one upstream request per file (and all 8 clients succeed)",
            f"max/file {h['upstream']['max_per_file']}, {h['clients_ok']}/{h['clients']} ok", h["ok"])
    o = results.get("offline", {}).get("larder")
    if o:
        add("offline: warm install succeeds with the upstream stopped", o["ok"], o["ok"])
    return out


# ------------------------------------------------------------------ main

def main() -> int:
    p = argparse.ArgumentParser(description="larder's benchmark (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="smaller set and short wrk runs (< 5 min)")
    p.add_argument("--cache", default=os.environ.get("LARDER_BENCH_CACHE", "~/.cache/larder-bench"),
                   help="where the downloaded fixture wheels are kept (outside the repo)")
    p.add_argument("--larder-bin", default=str(REPO / "target" / "release" / "larder"))
    p.add_argument("--only", default=",".join(DEFAULT_WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all but instructions)")
    p.add_argument("--peers", default="nginx,larder,larder-local,devpi,proxpi,pypiserver",
                   help="comma-separated rows to run")
    p.add_argument("--wrk-seconds", type=int, default=None, help="seconds per wrk run (default 10, quick 2)")
    p.add_argument("--repeat", type=int, default=None, help="runs of each warm install, median kept (default 3, quick 1)")
    p.add_argument("--counted-requests", type=int, default=None,
                   help="instructions workload: requests counted per page row, a quarter of it for the large rows "
                        "(default 2000, quick 400)")
    p.add_argument("--rtt-ms", type=float, default=40.0)
    p.add_argument("--rate-mbit", type=float, default=160.0)
    p.add_argument("--output", help="results JSON path (default bench/results/<date>-<mode>.json)")
    p.add_argument("--keep", action="store_true", help="keep the run's data dirs (default: only its logs)")
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--larder-commit", help=argparse.SUPPRESS)  # set by bench/run --larder-rev  # set by bench/run, for its exit trap
    p.add_argument("--setup-only", action="store_true", help="install peers and build the fixture, then stop")
    args = p.parse_args()
    do = set(args.only.split(","))
    unknown = do - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workloads {unknown}")
    wanted_peers = args.peers.split(",")

    install_cleanup()
    ctx = Ctx(args)
    started = time.monotonic()
    load_before = load()
    sampler = LoadSampler()
    log(f"run dir {ctx.run_dir}; load {load_before}")

    # Set-up: venvs, fixture.
    for name in PEER_VENVS:
        if name == "bandersnatch":
            py = find_python((3, 12))
            if py is None:
                log("no Python >= 3.12 found: the bandersnatch row will say n/a")
                continue
            ensure_venv(ctx.venvs, name, py)
        else:
            ensure_venv(ctx.venvs, name, ctx.python311)
    ctx.tree = fixture.prepare(ctx.cache, ctx.pip, log)
    ctx.fixture_stamp = hashlib.sha256((ctx.tree.root / "tree.json").read_bytes()).hexdigest()
    real = ctx.tree.real_dists()
    ctx.wheel = min((d for d in real if d.filename.endswith(".whl")), key=lambda d: abs(d.size - 2**20))
    if args.setup_only:
        return 0
    if not Path(ctx.larder_bin).exists():
        raise SystemExit(f"no larder binary at {ctx.larder_bin}: cargo build --release -p larder")

    ctx.start_upstream()
    fixture.write_json_api(ctx.tree, ctx.run_dir / "json-api" / "pypi",
                           f"http://127.0.0.1:{ctx.upstream_port}/packages/")
    access = AccessLog(ctx.run_dir / "logs" / "nginx-upstream.access.log")

    results: dict = {}
    classes = {c.name: c for c in peers_mod.ALL}
    selected = [classes[n] for n in wanted_peers if n in classes]
    if do & {"startup", "cold", "warm", "throughput", "offline"}:
        # nginx's cold row is pip straight from the fixture (loopback direct).
        for cls in selected:
            loopback_peer(ctx, cls, results, access, do)
        if "nginx" in wanted_peers and ("cold" in do):
            mark = access.mark()
            r = pip_download(ctx, ctx.upstream_url, "nginx-cold")
            r["upstream"] = summarize_upstream(access.since(mark))
            results.setdefault("cold_pip", {})["nginx"] = r
    if "herd" in do:
        for cls in selected:
            if cls.kind == "proxy":
                herd(ctx, cls, results, access)
    if "far" in do:
        far(ctx, [c for c in selected if c.kind == "proxy"], results, args.rtt_ms, args.rate_mbit)
    if "resolve" in do:
        resolve(ctx, [c for c in selected if c.kind == "proxy"], results, args.rtt_ms, args.rate_mbit)
    if peers_mod.Devpi.shared_server:
        peers_mod.Devpi.shared_server.stop()
        peers_mod.Devpi.shared_server = None
    if "mirror" in do:
        mirror(ctx, results)
    if "logging" in do and "larder-local" in wanted_peers:
        logging_cost(ctx, results)
    if "eviction" in do and "larder" in wanted_peers:
        eviction_cost(ctx, results)
    if "s3" in do and "larder" in wanted_peers:
        s3_blobs(ctx, results)
    if "nodes" in do and "larder" in wanted_peers:
        two_nodes(ctx, results, access)
    if "instructions" in do:
        instructions(ctx, selected, results)
    ctx.stop_upstream()

    load_after = load()
    load_during = sampler.finish()
    ratios = compute_ratios(results)
    targets = evaluate_targets(results, ratios)
    set_dists = [d for d in real if (d.project, d.version) in
                 {(fixture.normalize(x.split("==")[0]), x.split("==")[1]) for x in read_requirements(ctx.req)}]
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "duration_s": round(time.monotonic() - started, 1),
            "machine": machine_info(),
            "load_before": load_before, "load_after": load_after, "load_1min_during": load_during,
            "versions": tool_versions(ctx),
            "fixture": {
                "files": len(real), "mb": round(sum(d.size for d in real) / 1e6, 1),
                "projects": len({d.project for d in real}),
                "big_project_files": fixture.BIG_FILES,
                "install_set": ctx.req.name, "install_set_files": len(set_dists),
                "install_set_mb": round(sum(d.size for d in set_dists) / 1e6, 1),
                "requirements_sha256": hashlib.sha256(ctx.req.read_bytes()).hexdigest()[:16],
                "wheel_for_throughput": f"{ctx.wheel.filename} ({ctx.wheel.size} bytes)",
                "page_project": PAGE_PROJECT,
            },
            "settings": {"repeat_warm": ctx.repeat, "wrk": f"2 threads, 64 connections, {ctx.wrk_seconds}s (+{ctx.wrk_warmup}s warm-up)",
                         "far_upstream": f"{args.rtt_ms} ms RTT, {args.rate_mbit} Mbit/s per connection",
                         "larder_add_seconds": ctx.larder_add_seconds,
                         "instructions": f"callgrind, {ctx.counted_requests} requests per page row "
                                         f"({ctx.counted_requests // LARGE_SHARE} of big pages and the wheel) over "
                                         f"{COUNTED_CONNECTIONS} keep-alive connections, idle rate taken off",
                         "logging": "larder RUST_LOG=warn; peers at WARNING; nginx access_log off"},
        },
        "results": results,
        "ratios": ratios,
        "targets": targets,
    }
    tables = render_tables(results, ratios)
    print(tables)
    print("\n## Targets (issue 6)")
    for t in targets:
        print(f"  [{'MET ' if t['met'] else 'MISS'}] {t['target']}: {t['measured']}")
    print(f"\nload average before {load_before}, after {load_after}; 1-min load during the run "
          f"{load_during} (2 cores); {report['meta']['duration_s']} s")
    out = Path(args.output) if args.output else BENCH / "results" / (
        datetime.datetime.now().strftime("%Y-%m-%d-%H%M") + ("-quick" if args.quick else "-full") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    log(f"results saved to {out}")
    if not args.keep:
        # Data dirs hold copies of the fixture (~1-2 GB a run); the logs stay.
        for sub in ("data", "downloads", "venvs", "uv-cache", "json-api"):
            shutil.rmtree(ctx.run_dir / sub, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
