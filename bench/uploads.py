#!/usr/bin/env python3
"""Private-index benchmark (issue 11).

1. Upload throughput: CLIENTS concurrent `twine upload` processes, each
   uploading its own FILES wheels of SIZE_MB (incompressible payload), against
   larder (a hosted index, token auth), pypiserver (no auth, waitress) and
   devpi-server (root/dev, devpi-client login), each on a fresh data dir, in
   the same run. Reported: wall time, files/s and MB/s (median of REPEAT runs).
2. Warm pages: wrk on a plain page of larder's default index (/simple/P/) and
   on the same project through a layered index (/layered/simple/P/, bases
   [local]), JSON as pip asks for it; REPEAT runs of each, alternating,
   medians (and every run) reported.

    bench/uploads.py --larder target/release/larder [--clients 8] [--files 4]
                     [--size-mb 1] [--repeat 3] [--wrk-seconds 5] [--pages-only]

Peers come from a venv with the pins of bench/peers/devpi.txt and
bench/peers/pypiserver.txt plus twine 7.0.0 (--venv; created when missing).
Everything listens on 127.0.0.1 on free ports; every process started here is
stopped by its pid at the end.
"""

import argparse
import hashlib
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
JSON = "application/vnd.pypi.simple.v1+json"
PINS = ["devpi-server==6.20.3", "devpi-client==7.3.0", "pypiserver==2.4.2", "waitress==3.0.2",
        "watchdog==7.1.0", "twine==7.0.0"]


def log(msg):
    print(f"[uploads] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} never answered")


def wheel(dest: Path, name: str, version: str, size: int) -> Path:
    """A valid wheel with `size` bytes of incompressible payload."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    wheel_text = b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members = [(f"{dist}/__init__.py", b""), (f"{dist}/payload.bin", os.urandom(size)),
               (f"{info}/METADATA", metadata), (f"{info}/WHEEL", wheel_text)]
    record = "".join(f"{p},sha256={hashlib.sha256(b).hexdigest()},{len(b)}\n" for p, b in members)
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for p, b in members + [(f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode())]:
            z.writestr(p, b)
    return path


class Proc:
    def __init__(self, name, cmd, env=None, cwd=None):
        self.name = name
        self.log = open(WORK / f"{name}.log", "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)
        (WORK / "pids").mkdir(exist_ok=True)
        (WORK / "pids" / f"{name}.pid").write_text(str(self.p.pid))

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=20)
        except Exception:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_larder(args, data: Path):
    port = free_port()
    env = dict(os.environ, RUST_LOG="warn")
    run = lambda *a: subprocess.run([args.larder, *a, "--data-dir", data], check=True, capture_output=True,
                                    text=True, env=env).stdout
    run("index", "create", "team")
    token = run("token", "create", "--index", "team", "--scope", "upload").strip()
    proc = Proc(f"larder-{port}", [args.larder, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                                   "--min-free-space", "0"], env=env)
    wait_ready(f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}/team/", "__token__", token


def start_pypiserver(args, data: Path):
    port = free_port()
    (data / "packages").mkdir(parents=True)
    proc = Proc(f"pypiserver-{port}", [args.venv / "bin" / "pypi-server", "run", "--host", "127.0.0.1", "--port",
                                       str(port), "-a", ".", "-P", ".", "--disable-fallback", "--server", "auto",
                                       data / "packages"])
    wait_ready(f"http://127.0.0.1:{port}/")
    return proc, f"http://127.0.0.1:{port}/", "bench", "bench"


def start_devpi(args, data: Path):
    port = free_port()
    server = data / "server"
    subprocess.run([args.venv / "bin" / "devpi-init", "--serverdir", server, "--no-root-pypi"], check=True,
                   capture_output=True)
    logcfg = data / "log.json"
    logcfg.write_text(json.dumps({"version": 1, "handlers": {"console": {"class": "logging.StreamHandler",
                                  "stream": "ext://sys.stdout"}}, "root": {"level": "WARNING",
                                  "handlers": ["console"]}}))
    proc = Proc(f"devpi-{port}", [args.venv / "bin" / "devpi-server", "--serverdir", server, "--host",
                                  "127.0.0.1", "--port", str(port), "--logger-cfg", logcfg])
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/+api")
    client = ["devpi", "--clientdir", str(data / "client")]
    for a in (["use", base], ["login", "root", "--password", ""], ["index", "-c", "dev", "bases="]):
        subprocess.run([args.venv / "bin" / client[0], *client[1:], *a], check=True, capture_output=True)
    return proc, f"{base}/root/dev/", "root", ""


def upload_round(args, starter, files_per_client):
    with tempfile.TemporaryDirectory(dir=WORK) as data:
        proc, url, user, password = starter(args, Path(data))
        try:
            env = dict(os.environ, TWINE_USERNAME=user, TWINE_PASSWORD=password)
            started = time.perf_counter()
            uploads = [subprocess.Popen([args.venv / "bin" / "twine", "upload", "--non-interactive",
                                         "--disable-progress-bar", "--repository-url", url, *files],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                       for files in files_per_client]
            outputs = [u.communicate()[0] for u in uploads]
            seconds = time.perf_counter() - started
            for u, out in zip(uploads, outputs):
                if u.returncode != 0:
                    raise SystemExit(f"twine failed against {url}:\n{out.decode()[-2000:]}")
            return seconds
        finally:
            proc.stop()


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-H", f"Accept: {JSON}", url],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def warm_pages(args):
    with tempfile.TemporaryDirectory(dir=WORK) as data:
        data = Path(data)
        files = data / "files"
        files.mkdir()
        for version in ("1.0", "1.1", "2.0"):
            wheel(files, "bench-page", version, 1000)
        env = dict(os.environ, RUST_LOG="warn")
        subprocess.run([args.larder, "add", "--data-dir", data / "store", files], check=True, capture_output=True,
                       env=env)
        subprocess.run([args.larder, "index", "create", "layered", "--bases", "local", "--data-dir",
                        data / "store"], check=True, capture_output=True, env=env)
        port = free_port()
        proc = Proc(f"larder-pages-{port}", [args.larder, "serve", "--data-dir", data / "store", "--listen",
                                            f"127.0.0.1:{port}", "--min-free-space", "0"], env=env)
        try:
            wait_ready(f"http://127.0.0.1:{port}/health")
            urls = {label: f"http://127.0.0.1:{port}{path}"
                    for label, path in (("plain /simple/bench-page/", "/simple/bench-page/"),
                                        ("layered /layered/simple/bench-page/", "/layered/simple/bench-page/"))}
            for url in urls.values():
                wrk(url, 1)
            # Alternating runs, so a change in the machine's load hits both rows alike.
            runs = {label: [] for label in urls}
            for _ in range(args.repeat):
                for label, url in urls.items():
                    runs[label].append(wrk(url, args.wrk_seconds))
            return {label: statistics.median(r) for label, r in runs.items()}, runs
        finally:
            proc.stop()


def main():
    global WORK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--larder", required=True)
    parser.add_argument("--venv", type=Path, default=ROOT / ".work" / "venvs" / "upload-peers")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--files", type=int, default=4, help="wheels per client")
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--pages-only", action="store_true", help="only the warm pages (no uploads, no peers)")
    args = parser.parse_args()
    args.larder = str(Path(args.larder).resolve())
    WORK = ROOT / ".work" / "uploads" / time.strftime("%Y%m%d-%H%M%S")
    WORK.mkdir(parents=True)
    if not args.pages_only and not (args.venv / "bin" / "twine").exists():
        log(f"creating {args.venv}")
        subprocess.run([sys.executable, "-m", "venv", args.venv], check=True)
        subprocess.run([args.venv / "bin" / "pip", "install", "--quiet", *PINS], check=True)
    wheels = WORK / "wheels"
    wheels.mkdir()
    size = int(args.size_mb * 1024 * 1024)
    files = [[wheel(wheels, f"bench-up-{c}", f"1.{f}", size) for f in range(args.files)]
             for c in range(0 if args.pages_only else args.clients)]
    total = args.clients * args.files
    megabytes = sum(p.stat().st_size for group in files for p in group) / 1e6
    results = {"uploads": {}, "load_before": os.getloadavg()}
    if not args.pages_only:
        results.update(clients=args.clients, files=total, megabytes=round(megabytes, 1))
    starters = () if args.pages_only else (("larder", start_larder), ("pypiserver", start_pypiserver),
                                           ("devpi", start_devpi))
    for name, starter in starters:
        runs = [upload_round(args, starter, files) for _ in range(args.repeat)]
        seconds = statistics.median(runs)
        results["uploads"][name] = {"seconds": round(seconds, 2), "files_per_s": round(total / seconds, 1),
                                    "mb_per_s": round(megabytes / seconds, 1), "runs": [round(r, 2) for r in runs]}
        log(f"{name}: {results['uploads'][name]}")
    rows, runs = warm_pages(args)
    results["warm_pages_rps"] = {k: round(v) for k, v in rows.items()}
    results["warm_pages_runs"] = {k: [round(r) for r in v] for k, v in runs.items()}
    results["load_after"] = os.getloadavg()
    if results["uploads"]:
        print(f"\n{args.clients} concurrent twine uploads, {total} wheels of {args.size_mb} MB "
              f"({megabytes:.1f} MB), median of {args.repeat}:")
        print(f"{'server':<12} {'seconds':>8} {'files/s':>8} {'MB/s':>7}")
        for name, row in results["uploads"].items():
            print(f"{name:<12} {row['seconds']:>8} {row['files_per_s']:>8} {row['mb_per_s']:>7}")
    print(f"\nwarm page, requests/s (wrk -t2 -c32, JSON), median of {args.repeat} alternating runs; "
          f"load average before {results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f}:")
    for label, rps in results["warm_pages_rps"].items():
        print(f"  {label:<40} {rps}  runs {results['warm_pages_runs'][label]}")
    (WORK / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{WORK / 'results.json'}")


if __name__ == "__main__":
    main()
