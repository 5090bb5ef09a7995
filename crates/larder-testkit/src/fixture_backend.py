"""A self-contained PEP 517 build backend for larder's test fixtures.

It uses nothing but the standard library, so pip and uv can build the sdist
it ships in (``[build-system] requires = []``, ``backend-path``) without
fetching a single build dependency from an index. The wheel it builds holds
the package directory named by ``PACKAGE`` and a ``.dist-info`` whose
``METADATA`` is the sdist's ``PKG-INFO``, byte for byte.
"""

import base64
import hashlib
import os
import tarfile
import zipfile

# larder-testkit writes the constants block below when it builds the sdist.
PACKAGE = "@PACKAGE@"
TAG = "@TAG@"

_DATE = (2020, 1, 1, 0, 0, 0)


def _pkg_info():
    with open("PKG-INFO", "rb") as f:
        return f.read()


def _name_version():
    name = version = None
    for line in _pkg_info().decode("utf-8").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == "name":
            name = value.strip()
        elif key.strip().lower() == "version":
            version = value.strip()
    if not name or not version:
        raise RuntimeError("PKG-INFO lacks Name or Version")
    return name, version


def _dist_name():
    name, version = _name_version()
    escaped = name.replace("-", "_").replace(".", "_").lower()
    while "__" in escaped:
        escaped = escaped.replace("__", "_")
    return escaped, version


def _dist_info():
    dist, version = _dist_name()
    return f"{dist}-{version}.dist-info"


def _wheel_text():
    return (
        "Wheel-Version: 1.0\n"
        "Generator: larder-testkit-fixture-backend\n"
        "Root-Is-Purelib: true\n"
        f"Tag: {TAG}\n"
    ).encode("utf-8")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = _dist_info()
    target = os.path.join(metadata_directory, dist_info)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "wb") as f:
        f.write(_pkg_info())
    with open(os.path.join(target, "WHEEL"), "wb") as f:
        f.write(_wheel_text())
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist, version = _dist_name()
    dist_info = _dist_info()
    filename = f"{dist}-{version}-{TAG}.whl"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:

        def add(arcname, data):
            zf.writestr(zipfile.ZipInfo(arcname, date_time=_DATE), data, zipfile.ZIP_DEFLATED)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
            records.append(f"{arcname},sha256={digest},{len(data)}")

        for root, dirs, files in os.walk(PACKAGE):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    add(path.replace(os.sep, "/"), f.read())
        add(f"{dist_info}/METADATA", _pkg_info())
        add(f"{dist_info}/WHEEL", _wheel_text())
        records.append(f"{dist_info}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=_DATE), "\n".join(records) + "\n")
    return filename


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    dist, version = _dist_name()
    base = f"{dist}-{version}"
    filename = f"{base}.tar.gz"

    def keep(info):
        if "__pycache__" in info.name or info.name.endswith(".pyc"):
            return None
        return info

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tf:
        for entry in ("PKG-INFO", "pyproject.toml", "_backend", PACKAGE):
            tf.add(entry, arcname=f"{base}/{entry}", filter=keep)
    return filename
