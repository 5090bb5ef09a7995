"""The hermetic fixture upstream: a static PEP 503 + PEP 691 tree with
PEP 658 `.metadata` files, made from real wheels downloaded once with
`pip download` (pip's own default index; no host is named here) into a
cache directory outside the repository, plus one synthetic project with
thousands of tiny wheels for the big-page workload.

Layout of the built tree (`<cache>/tree/`):

    simple/index.html, simple/index.json           the project list
    simple/<project>/index.html, index.json        one page per project
    files/<filename>, files/<filename>.metadata    the distributions
    tree.json                                      what was built, for the harness

File links are relative (`../../files/<filename>`), so the same tree works
behind any port and behind the far-upstream forwarder.
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent

# The synthetic project of the big-page workload.
BIG_PROJECT = "larder-bench-big"
BIG_FILES = 3000
# Fixed upload time written into every page (PEP 700), so pages are
# byte-for-byte reproducible.
UPLOAD_TIME = "2026-01-01T00:00:00.000000Z"
# Bump when the tree layout changes: the cached tree is rebuilt.
TREE_FORMAT = 3


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(path: Path) -> list[str]:
    """`name==version` lines, comments and blanks dropped."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins.append(line)
    return pins


@dataclass
class Dist:
    filename: str
    project: str  # normalized
    version: str
    size: int
    sha256: str
    metadata_sha256: str
    requires_python: str | None
    in_set: bool = False  # part of the install set (requirements.txt)


@dataclass
class Tree:
    root: Path
    dists: list[Dist] = field(default_factory=list)

    @property
    def files(self) -> Path:
        return self.root / "files"

    def projects(self) -> list[str]:
        return sorted({d.project for d in self.dists})

    def real_dists(self) -> list[Dist]:
        return [d for d in self.dists if d.project != BIG_PROJECT]

    def save(self) -> None:
        (self.root / "tree.json").write_text(json.dumps(
            {"format": TREE_FORMAT, "dists": [d.__dict__ for d in self.dists]}, indent=1))

    @classmethod
    def load(cls, root: Path) -> "Tree | None":
        try:
            data = json.loads((root / "tree.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("format") != TREE_FORMAT:
            return None
        return cls(root, [Dist(**d) for d in data["dists"]])


def wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return normalize(name), version


def wheel_metadata(path: Path) -> bytes:
    """The METADATA file of a wheel's `.dist-info` directory."""
    with zipfile.ZipFile(path) as z:
        candidates = [n for n in z.namelist()
                      if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(candidates) != 1:
            raise ValueError(f"{path.name}: expected one .dist-info/METADATA, found {candidates}")
        return z.read(candidates[0])


def requires_python_of(metadata: bytes) -> str | None:
    headers = email.parser.BytesHeaderParser().parsebytes(metadata)
    value = headers.get("Requires-Python")
    return str(value).strip() if value else None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(cache: Path, pip: list[str], log) -> Path:
    """Downloads every pinned wheel (install set + extras) into
    `<cache>/downloads` once; later runs only check they are there."""
    dest = cache / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    # One pip run per list: pip refuses two pins of one project in one run.
    for name in ("requirements.txt", "fixture-extra.txt"):
        wanted = read_requirements(BENCH / name)
        have = {wheel_name_version(f) for f in os.listdir(dest) if f.endswith(".whl")}
        missing = [p for p in wanted if (normalize(p.split("==")[0]), p.split("==")[1]) not in have]
        if not missing:
            continue
        log(f"downloading {len(missing)} pinned wheels of {name} into {dest} (once)")
        req = cache / "missing-requirements.txt"
        req.write_text("\n".join(missing) + "\n")
        # Every manylinux generation a glibc 2.28 machine runs: pip takes
        # the listed platforms literally.
        platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                     for a in ("--platform", p)]
        subprocess.run(
            pip + ["download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                   "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", *platforms,
                   "--progress-bar", "off", "-d", str(dest), "-r", str(req)],
            check=True, env=clean_pip_env())
    return dest


def clean_pip_env(extra: dict | None = None) -> dict:
    """The environment for pip and uv: none of the machine's index, find-links
    or config settings leak into a measurement."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_")) and k not in ("VIRTUAL_ENV",)}
    env.update({
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    })
    if extra:
        env.update(extra)
    return env


def make_tiny_wheel(path: Path, dist: str, version: str) -> None:
    """A minimal valid wheel, byte-for-byte reproducible."""
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {BIG_PROJECT}\nVersion: {version}\nRequires-Python: >=3.8\n\n"
    wheel = "Wheel-Version: 1.0\nGenerator: larder-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    module = f"VERSION = {version!r}\n"
    entries = [(f"{dist}/__init__.py", module), (f"{info}/METADATA", metadata), (f"{info}/WHEEL", wheel)]
    record = ""
    for name, text in entries:
        import base64
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(text.encode())}\n"
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in entries:
            zi = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, text)
    path.write_bytes(buf.getvalue())


def big_project_wheels(cache: Path) -> Path:
    dest = cache / "big"
    if dest.is_dir() and len(os.listdir(dest)) == BIG_FILES:
        return dest
    tmp = cache / "big.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dist = BIG_PROJECT.replace("-", "_")
    for i in range(BIG_FILES):
        version = f"{i // 1000}.{(i // 50) % 20}.{i % 50}"
        make_tiny_wheel(tmp / f"{dist}-{version}-py3-none-any.whl", dist, version)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def version_key(v: str):
    """Good enough PEP 440 ordering for the pinned set (release numbers,
    post releases)."""
    parts = []
    for piece in re.split(r"[.]", v):
        m = re.match(r"(\d+)(.*)", piece)
        if m:
            parts.append((int(m.group(1)), m.group(2)))
        else:
            parts.append((-1, piece))
    return parts


def render_project_html(name: str, dists: list[Dist], metadata: bool = True) -> str:
    lines = [
        "<!DOCTYPE html>", "<html>", "  <head>",
        '    <meta name="pypi:repository-version" content="1.1">',
        f"    <title>Links for {name}</title>", "  </head>", "  <body>",
        f"    <h1>Links for {name}</h1>",
    ]
    for d in dists:
        attrs = ""
        if d.requires_python:
            attrs += f' data-requires-python="{html.escape(d.requires_python)}"'
        if metadata:
            attrs += f' data-dist-info-metadata="sha256={d.metadata_sha256}" data-core-metadata="sha256={d.metadata_sha256}"'
        lines.append(f'    <a href="../../files/{d.filename}#sha256={d.sha256}"{attrs}>{d.filename}</a><br />')
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def render_project_json(name: str, dists: list[Dist], metadata: bool = True) -> str:
    files = []
    for d in dists:
        entry = {
            "filename": d.filename,
            "url": f"../../files/{d.filename}",
            "hashes": {"sha256": d.sha256},
            **({"core-metadata": {"sha256": d.metadata_sha256},
                "dist-info-metadata": {"sha256": d.metadata_sha256}} if metadata else {}),
            "size": d.size,
            "upload-time": UPLOAD_TIME,
            "yanked": False,
        }
        if d.requires_python:
            entry["requires-python"] = d.requires_python
        files.append(entry)
    versions = sorted({d.version for d in dists}, key=version_key)
    return json.dumps({"meta": {"api-version": "1.1", "_last-serial": 1}, "name": name,
                       "files": files, "versions": versions}, separators=(",", ":"))


def build_tree(cache: Path, log) -> Tree:
    """Builds (or reuses) `<cache>/tree` from the downloads and the big
    project."""
    downloads = cache / "downloads"
    big = big_project_wheels(cache)
    root = cache / "tree"
    install_set = {tuple(p.split("==")) for p in read_requirements(BENCH / "requirements.txt")}
    install_set = {(normalize(n), v) for n, v in install_set}
    sources = sorted(downloads.glob("*.whl")) + sorted(big.glob("*.whl"))
    existing = Tree.load(root)
    if existing and sorted(d.filename for d in existing.dists) == sorted(p.name for p in sources):
        for d in existing.dists:
            d.in_set = (d.project, d.version) in install_set
        return existing
    log(f"building the fixture tree in {root} ({len(sources)} files)")
    tmp = cache / "tree.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "files").mkdir(parents=True)
    tree = Tree(tmp)
    for src in sources:
        project, version = wheel_name_version(src.name)
        target = tmp / "files" / src.name
        try:
            os.link(src, target)
        except OSError:
            shutil.copyfile(src, target)
        metadata = wheel_metadata(src)
        (tmp / "files" / (src.name + ".metadata")).write_bytes(metadata)
        tree.dists.append(Dist(
            filename=src.name, project=project, version=version, size=src.stat().st_size,
            sha256=sha256_file(src), metadata_sha256=hashlib.sha256(metadata).hexdigest(),
            requires_python=requires_python_of(metadata),
            in_set=(project, version) in install_set))
    by_project: dict[str, list[Dist]] = {}
    for d in tree.dists:
        by_project.setdefault(d.project, []).append(d)
    simple = tmp / "simple"
    for project, dists in by_project.items():
        dists.sort(key=lambda d: (version_key(d.version), d.filename))
        (simple / project).mkdir(parents=True)
        (simple / project / "index.html").write_text(render_project_html(project, dists))
        (simple / project / "index.json").write_text(render_project_json(project, dists))
    names = sorted(by_project)
    (simple / "index.html").write_text(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n"
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        + "".join(f'    <a href="{n}/">{n}</a>\n' for n in names) + "  </body>\n</html>\n")
    (simple / "index.json").write_text(json.dumps(
        {"meta": {"api-version": "1.1", "_last-serial": 1},
         "projects": [{"name": n, "_last-serial": 1} for n in names]}, separators=(",", ":")))
    tree.save()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    tree.root = root
    missing = install_set - {(d.project, d.version) for d in tree.dists}
    if missing:
        raise SystemExit(f"fixture: pinned wheels missing from the downloads: {sorted(missing)}")
    return tree


def without_metadata(tree: Tree, dest: Path) -> Path:
    """A copy of the tree's simple pages at `dest` that advertise no PEP 658
    metadata, beside links to its distribution files (and no `.metadata`
    files): an upstream like the many indexes that have none. Returns
    `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "files").mkdir(parents=True)
    by_project: dict[str, list[Dist]] = {}
    for d in tree.dists:
        by_project.setdefault(d.project, []).append(d)
        (dest / "files" / d.filename).symlink_to(tree.files / d.filename)
    for project, dists in by_project.items():
        dists.sort(key=lambda d: (version_key(d.version), d.filename))
        (dest / "simple" / project).mkdir(parents=True)
        (dest / "simple" / project / "index.html").write_text(render_project_html(project, dists, metadata=False))
        (dest / "simple" / project / "index.json").write_text(render_project_json(project, dists, metadata=False))
    for name in ("index.html", "index.json"):
        shutil.copyfile(tree.root / "simple" / name, dest / "simple" / name)
    return dest


def write_json_api(tree: Tree, dest: Path, files_base: str) -> None:
    """The legacy JSON API (`/pypi/<project>/json`) that bandersnatch reads,
    with absolute file URLs under `files_base` (`.../packages/`, served by
    the fixture nginx from the same files). Written per run (the URLs
    carry the port)."""
    shutil.rmtree(dest, ignore_errors=True)
    by_project: dict[str, list[Dist]] = {}
    for d in tree.real_dists():
        by_project.setdefault(d.project, []).append(d)
    for project, dists in by_project.items():
        releases: dict[str, list] = {}
        for d in dists:
            releases.setdefault(d.version, []).append({
                "filename": d.filename,
                "url": f"{files_base}{d.sha256[:2]}/{d.sha256[2:4]}/{d.sha256[4:]}/{d.filename}",
                "digests": {"sha256": d.sha256},
                "size": d.size,
                "upload_time_iso_8601": UPLOAD_TIME,
                "packagetype": "bdist_wheel",
                "requires_python": d.requires_python,
                "yanked": False,
                "core-metadata": {"sha256": d.metadata_sha256},
            })
        latest = max(releases, key=version_key)
        out = dest / project
        out.mkdir(parents=True)
        (out / "json").write_text(json.dumps({
            "info": {"name": project, "version": latest},
            "last_serial": 1,
            "releases": releases,
            "urls": releases[latest],
        }))


def prepare(cache: Path, pip: list[str], log) -> Tree:
    download(cache, pip, log)
    tree = build_tree(cache, log)
    real = tree.real_dists()
    log(f"fixture: {len(real)} files, {sum(d.size for d in real) / 1e6:.0f} MB in {len(tree.projects()) - 1} projects, "
        f"+ {BIG_PROJECT} with {BIG_FILES} files")
    return tree


if __name__ == "__main__":
    cache = Path(sys.argv[1])
    prepare(cache, [sys.executable, "-m", "pip"], print)
