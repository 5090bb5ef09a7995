#!/usr/bin/env python3
"""Whole-index rehearsal: `larder mirror --all` and `bandersnatch mirror`
side by side on the synthetic upstream (crates/larder-testkit/src/synthetic.rs,
generated on the fly, three ~1.2 KB wheels per project).

For each size: a first full sync, a run after 1% of the projects changed
(one new release each), and a run with nothing changed. Each row gives wall
time, projects/s, CPU (user+sys) of the mirror process and per stored file,
its peak RSS, the store size, and the upstream's own CPU. From the first
sync of the biggest size it projects a first sync of 740,000 projects with
real file sizes at 1 Gbit/s.

    bench/whole-index --sizes 2000,20000 [--jobs 8] [--tools larder,bandersnatch]

Everything listens on 127.0.0.1; every process is started by this script
and stopped by its pid.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work"
PUBLIC_PROJECTS = 740_000
# The public index's mean file size and files per project (order of
# magnitude: ~30 TB over ~7.5 M files, ~10 files per project).
PUBLIC_FILES_PER_PROJECT = 10
PUBLIC_MEAN_FILE_BYTES = 4_000_000
LINK_BYTES_S = 1e9 / 8


def log(msg: str) -> None:
    print(f"[whole-index] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class Upstream:
    """The synthetic upstream process, for one size and generation."""

    def __init__(self, binary: Path, projects: int, generation: int):
        self.proc = subprocess.Popen(
            ["nice", "-n", "10", binary, "--projects", str(projects), "--generation", str(generation),
             "--changed-every", "100"],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"synthetic upstream did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.cpu0 = cpu_seconds(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) - self.cpu0

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait()


def measured(cmd: list, env: dict | None = None) -> dict:
    """Runs cmd niced; its wall time, CPU (user+sys, and each part), voluntary
    context switches and peak RSS (wait4, in rusage_of.py: a child forked
    from this process would count this process's memory as its own). User
    CPU is the tool's own work; sys CPU also carries the filesystem's, which
    on some machines swings with what else was created or deleted there
    just before."""
    log_path = WORK / "whole-index-last.log"
    done = subprocess.run([sys.executable, Path(__file__).with_name("rusage_of.py"), log_path, "--", *map(str, cmd)],
                          env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, text=True, check=True)
    usage = json.loads(done.stdout)
    return {"code": usage["code"], "wall": round(usage["wall"], 2), "cpu": round(usage["user"] + usage["sys"], 2),
            "user": round(usage["user"], 2), "sys": round(usage["sys"], 2),
            "voluntary_switches": usage["voluntary_switches"], "rss_mb": round(usage["maxrss_kb"] / 1024, 1),
            "log_tail": log_path.read_text(errors="replace")[-600:]}


def larder_cmd(binary: Path, data: Path, url: str, jobs: int) -> list:
    return [binary, "mirror", "--data-dir", data, "--upstream", f"{url}/simple/", "--all", "--jobs", jobs, "--quiet"]


def bandersnatch_cmd(binary: Path, data: Path, url: str, jobs: int) -> list:
    conf = data / "bandersnatch.conf"
    if not conf.exists():
        data.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"""[mirror]
directory = {data / 'mirror'}
master = {url}
allow-non-https = true
json = false
release-files = true
core-metadata = false
workers = {min(jobs, 10)}
timeout = 30
global-timeout = 18000
stop-on-error = false
hash-index = false
simple-format = ALL
compare-method = hash
""")
    else:
        text = conf.read_text().splitlines()
        conf.write_text("\n".join(f"master = {url}" if l.startswith("master = ") else l for l in text) + "\n")
    return [binary, "-c", conf, "mirror"]


def files_stored(tool: str, data: Path) -> int:
    if tool == "larder":
        return sum(1 for _ in (data / "blobs").rglob("*") if _.is_file()) // 2  # wheel + its METADATA
    return sum(1 for _ in (data / "mirror" / "web" / "packages").rglob("*.whl"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--tools", default="larder,bandersnatch")
    ap.add_argument("--larder-bin", type=Path, default=ROOT / "target" / "release" / "larder")
    ap.add_argument("--upstream-bin", type=Path, default=ROOT / "target" / "release" / "synthetic-upstream")
    ap.add_argument("--bandersnatch-bin", type=Path, default=WORK / "venvs" / "bandersnatch" / "bin" / "bandersnatch")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs (see --data-root)")
    ap.add_argument("--data-root", type=Path, default=WORK / "whole-index",
                    help="where the tools' data dirs go (default bench/.work/whole-index/); a tmpfs here keeps "
                         "the disk's and the filesystem's own costs out of the comparison")
    args = ap.parse_args()
    tools = args.tools.split(",")
    binaries = {"larder": args.larder_bin, "bandersnatch": args.bandersnatch_bin}
    for tool in tools:
        if not binaries[tool].exists():
            raise SystemExit(f"{binaries[tool]} missing (cargo build --release -p larder -p larder-testkit --bins; "
                             "bandersnatch: a venv with bench/peers/bandersnatch.txt)")
    commands = {"larder": larder_cmd, "bandersnatch": bandersnatch_cmd}
    results = {"started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                           "load_before": os.getloadavg()}, "jobs": args.jobs, "rows": []}
    for size in map(int, args.sizes.split(",")):
        for tool in tools:
            data = args.data_root / f"{tool}-{size}"
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            for phase, generation in (("first sync", 0), ("1% changed", 1), ("nothing changed", 1)):
                upstream = Upstream(args.upstream_bin, size, generation)
                try:
                    before = files_stored(tool, data)
                    row = measured(commands[tool](binaries[tool], data, upstream.url, args.jobs),
                                   {"RUST_LOG": "warn"} if tool == "larder" else None)
                    row["upstream_cpu"] = round(upstream.cpu(), 2)
                finally:
                    upstream.stop()
                new_files = files_stored(tool, data) - before
                row.update(tool=tool, projects=size, phase=phase, new_files=new_files,
                           projects_s=round(size / row["wall"], 1) if phase == "first sync" and row["code"] == 0 else None,
                           cpu_ms_per_file=round(1000 * row["cpu"] / new_files, 3) if new_files else None,
                           user_ms_per_file=round(1000 * row["user"] / new_files, 3) if new_files else None,
                           store_mb=round(tree_bytes(data) / 1e6, 1))
                if row["code"] != 0:
                    log(f"{tool} {size} {phase}: exit {row['code']}\n{row['log_tail']}")
                row.pop("log_tail")
                results["rows"].append(row)
                log(json.dumps(row))
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
    results["machine"]["load_after"] = os.getloadavg()
    print(f"{'tool':<13}{'projects':>9}  {'phase':<16}{'wall s':>8}{'proj/s':>8}{'CPU s':>8}{'ms/file':>9}"
          f"{'user s':>8}{'user ms/f':>10}{'sys s':>8}{'RSS MB':>8}{'store MB':>9}{'files':>8}{'upstr CPU':>10}")
    for r in results["rows"]:
        print(f"{r['tool']:<13}{r['projects']:>9}  {r['phase']:<16}{r['wall']:>8}{r['projects_s'] or '':>8}"
              f"{r['cpu']:>8}{r['cpu_ms_per_file'] or '':>9}{r['user']:>8}{r['user_ms_per_file'] or '':>10}"
              f"{r['sys']:>8}{r['rss_mb']:>8}{r['store_mb']:>9}{r['new_files']:>8}"
              f"{r['upstream_cpu']:>10}")
    firsts = [r for r in results["rows"] if r["tool"] == "larder" and r["phase"] == "first sync" and r["code"] == 0]
    if firsts:
        big = max(firsts, key=lambda r: r["projects"])
        cpu_per_file = big["cpu"] / big["new_files"]
        files = PUBLIC_PROJECTS * PUBLIC_FILES_PER_PROJECT
        cpu_bound = files * cpu_per_file / (os.cpu_count() or 1)
        link_bound = files * PUBLIC_MEAN_FILE_BYTES / LINK_BYTES_S
        results["projection_740k"] = {
            "files": files, "cpu_ms_per_file": round(1000 * cpu_per_file, 3),
            "cpu_bound_hours": round(cpu_bound / 3600, 1), "link_bound_hours": round(link_bound / 3600, 1),
            "hours": round(max(cpu_bound, link_bound) / 3600, 1)}
        log(f"projection for {PUBLIC_PROJECTS} projects: {results['projection_740k']}")
    out = ROOT / "bench" / "results" / f"{datetime.datetime.now():%Y-%m-%d-%H%M}-whole-index.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
