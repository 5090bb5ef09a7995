"""The servers compared: how each one is started, pointed at the fixture
upstream (the way its own documentation says), and where its index is.

Every server listens on 127.0.0.1 on a free port, gets a fresh data
directory on every `start()`, and logs at warning level where it has a
documented knob for that (request logging is measured separately for
larder), so that throughput compares serving, not log writing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from fixture import Tree, clean_pip_env
from services import Service, free_port, nginx_service


class Peer:
    """One row of the tables."""

    name = "?"
    kind = "proxy"  # proxy | static
    python = True  # a Python peer (for the "best peer" ratios)
    wrapper: list = []  # a command the server runs under (valgrind, for the instructions workload)

    def __init__(self, ctx):
        self.ctx = ctx
        self.service: Service | None = None
        self.port = 0
        self.data: Path | None = None
        self.startup: float | None = None
        self.prepare_seconds: float | None = None
        self.upstream: str | None = None

    # -- where things are
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return f"{self.base}/simple/"

    def page_url(self, project: str) -> str:
        return f"{self.index_url}{project}/"

    @property
    def ready_url(self) -> str:
        return f"{self.base}/"

    # -- life cycle
    def fresh_dir(self, tag: str) -> Path:
        d = self.ctx.run_dir / "data" / f"{self.name}-{tag}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def start(self, upstream: str | None, tag: str = "main") -> "Peer":
        self.upstream = upstream
        self.port = free_port()
        self.data = self.fresh_dir(tag)
        t = time.monotonic()
        self.prepare()
        self.prepare_seconds = round(time.monotonic() - t, 3)
        self.service = self.make_service()
        self.service.cmd[:0] = [str(c) for c in self.wrapper]
        self.service.start()
        self.startup = round(self.service.wait_ready(self.ready_url), 3)
        self.after_start()
        return self

    def prepare(self) -> None:
        """Work before the server starts (init, adding files)."""

    def after_start(self) -> None:
        """Work after the server answers (creating an index)."""

    def make_service(self) -> Service:
        raise NotImplementedError

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.service = None


class Nginx(Peer):
    name = "nginx"
    kind = "static"
    python = False
    master_process = "on"  # "off": one process that serves every request (the instructions workload)

    def make_service(self) -> Service:
        return nginx_service(f"ref-{self.port}", self.ctx.run_dir, self.ctx.tree.root, self.port, access_log=False,
                             master_process=self.master_process)


class Larder(Peer):
    """larder as a caching proxy in front of the fixture upstream."""

    name = "larder"
    python = False
    rust_log = "warn"

    @property
    def ready_url(self) -> str:
        return f"{self.base}/health"

    def serve_cmd(self) -> list:
        cmd = [self.ctx.larder_bin, "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}",
               "--log-format", "json"]
        if self.upstream:
            cmd += ["--upstream", self.upstream]
        return cmd

    def make_service(self) -> Service:
        env = clean_pip_env({"RUST_LOG": self.rust_log})
        return Service(f"{self.name}-{self.port}", self.serve_cmd(), self.ctx.run_dir, env=env)


class LarderLocal(Larder):
    """larder serving the same files as its local index (`larder add`), no
    upstream: the private-index / warm comparison."""

    name = "larder-local"
    kind = "static"

    def prepare(self) -> None:
        # Blobs are content-addressed: the store of a previous run is
        # reused (copied) when the fixture is the same, because adding
        # 3,000 files costs time that is not what this row measures. The
        # add time is measured once and reported.
        cached = self.ctx.work / "larder-local-store"
        stamp = cached / "fixture.stamp"
        binary = Path(self.ctx.larder_bin).stat()
        want = f"{self.ctx.fixture_stamp} {self.ctx.larder_bin} {binary.st_size} {binary.st_mtime_ns}"
        if not (stamp.exists() and stamp.read_text() == want):
            shutil.rmtree(cached, ignore_errors=True)
            cached.mkdir(parents=True)
            t = time.monotonic()
            subprocess.run([self.ctx.larder_bin, "add", "--data-dir", cached,
                            self.ctx.cache / "downloads", self.ctx.cache / "big"],
                           check=True, stdout=subprocess.DEVNULL, env=clean_pip_env({"RUST_LOG": "warn"}))
            (cached / "add.seconds").write_text(f"{time.monotonic() - t:.3f}")
            stamp.write_text(want)
        self.ctx.larder_add_seconds = float((cached / "add.seconds").read_text())
        shutil.rmtree(self.data)
        shutil.copytree(cached, self.data)


class Devpi(Peer):
    """devpi-server with a mirror index (type=mirror, mirror_url=upstream).

    devpi takes seconds to start, so the herd and far workloads share one
    server (`shared=True`): each of their runs gets a new mirror index, and
    a new mirror index starts with an empty cache."""

    name = "devpi"
    shared_server: "Devpi | None" = None

    def __init__(self, ctx, shared: bool = False):
        super().__init__(ctx)
        self.shared = shared
        self.index = "fixture"

    def start(self, upstream: str | None, tag: str = "main") -> "Peer":
        if not self.shared:
            return super().start(upstream, tag)
        if Devpi.shared_server is None or not Devpi.shared_server.service.alive():
            Devpi.shared_server = Devpi(self.ctx).start(upstream, "shared")
        server = Devpi.shared_server
        self.port, self.data, self.service = server.port, server.data, server.service
        self.startup, self.prepare_seconds = server.startup, server.prepare_seconds
        self.upstream = upstream
        self.index = f"fixture-{tag}"
        self.create_index()
        return self

    def stop(self) -> None:
        if self.shared:
            self.service = None  # the shared server runs on; stopped at exit
            return
        super().stop()

    @property
    def index_url(self) -> str:
        return f"{self.base}/root/{self.index}/+simple/"

    @property
    def ready_url(self) -> str:
        return f"{self.base}/+api"

    def bin(self, tool: str) -> str:
        return str(self.ctx.venvs / "devpi" / "bin" / tool)

    def prepare(self) -> None:
        subprocess.run([self.bin("devpi-init"), "--serverdir", self.data / "server", "--no-root-pypi"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (self.data / "logging.json").write_text(json.dumps({
            "version": 1,
            "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
            "root": {"level": "WARNING", "handlers": ["console"]},
        }))

    def make_service(self) -> Service:
        return Service(f"devpi-{self.port}", [
            self.bin("devpi-server"), "--serverdir", self.data / "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--logger-cfg", self.data / "logging.json"],
            self.ctx.run_dir, env=clean_pip_env())

    def after_start(self) -> None:
        self.create_index()

    def create_index(self) -> None:
        client = self.data / "client"
        env = clean_pip_env()
        devpi = [self.bin("devpi"), "--clientdir", str(client)]
        for args in (["use", self.base], ["login", "root", "--password", ""],
                     ["index", "-c", self.index, "type=mirror",
                      f"mirror_url={self.upstream or self.ctx.upstream_url}"]):
            subprocess.run(devpi + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


class Proxpi(Peer):
    """proxpi under gunicorn with two threads, as its container image runs it."""

    name = "proxpi"

    @property
    def index_url(self) -> str:
        return f"{self.base}/index/"

    def make_service(self) -> Service:
        env = clean_pip_env({
            "PROXPI_INDEX_URL": self.upstream or self.ctx.upstream_url,
            "PROXPI_CACHE_DIR": str(self.data),
            "PROXPI_LOGGING_LEVEL": "WARNING",
        })
        return Service(f"proxpi-{self.port}", [
            self.ctx.venvs / "proxpi" / "bin" / "gunicorn", "--preload", "--bind", f"127.0.0.1:{self.port}",
            "--threads", "2", "proxpi.server:app"], self.ctx.run_dir, env=env)


class Pypiserver(Peer):
    """pypiserver serving the same files from a directory (it is no proxy)."""

    name = "pypiserver"
    kind = "static"

    def prepare(self) -> None:
        packages = self.data / "packages"
        packages.mkdir()
        for src in list((self.ctx.cache / "downloads").glob("*.whl")) + list((self.ctx.cache / "big").glob("*.whl")):
            try:
                (packages / src.name).hardlink_to(src)
            except OSError:
                shutil.copyfile(src, packages / src.name)

    def make_service(self) -> Service:
        return Service(f"pypiserver-{self.port}", [
            self.ctx.venvs / "pypiserver" / "bin" / "pypi-server", "run", "--host", "127.0.0.1",
            "--port", str(self.port), "--disable-fallback",
            self.data / "packages"], self.ctx.run_dir, env=clean_pip_env())


PROXIES = [Larder, Devpi, Proxpi]
STATIC = [Nginx, LarderLocal, Pypiserver]
ALL = [Nginx, Larder, LarderLocal, Devpi, Proxpi, Pypiserver]


def mirror_larder_command(ctx, upstream: str, dest: Path, projects: list[str]) -> list | None:
    """The larder mirror invocation (every file of the named projects, like
    bandersnatch's sync), or None (the row says n/a) for a larder without
    `larder mirror`."""
    probe = subprocess.run([ctx.larder_bin, "mirror", "--help"], capture_output=True)
    if probe.returncode != 0:
        return None
    cmd = [ctx.larder_bin, "mirror", "--quiet", "--data-dir", dest, "--upstream", upstream]
    for project in projects:
        cmd += ["--project", project]
    return cmd
