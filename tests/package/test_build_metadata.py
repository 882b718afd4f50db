"""Build metadata that EL9's setuptools (53.0.0, on Python 3.9) reads.

setuptools before 61 ignores pyproject.toml's [project] table and builds an
empty "UNKNOWN-0.0.0" package from it; ftpdup keeps its metadata in
setup.cfg. This builds the wheel as EL9 would and looks inside.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import zipfile

import pytest

from tests.harness.consul_agent import REPOSITORY

pytestmark = pytest.mark.package


def python39() -> str:
    """Return a Python 3.9 interpreter (pyenv's on these machines, or one on PATH)."""
    candidates = glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))
    candidates += [path for path in [shutil.which("python3.9")] if path]
    assert candidates, "no Python 3.9 on this machine (EL9's python3 is 3.9)"
    return sorted(candidates)[-1]


def test_setuptools_53_on_python_39_builds_the_whole_package(tmp_path):
    venv = tmp_path / "el9"
    subprocess.run([python39(), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "setuptools==53.0.0", "wheel==0.36.2"], check=True)
    source = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in tracked:
        if os.path.isfile(os.path.join(REPOSITORY, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPOSITORY, name), source / name)
    subprocess.run(
        [*pip, "wheel", "--no-build-isolation", "--no-deps", "-w", str(tmp_path / "out"), "."],
        cwd=source,
        check=True,
    )
    (wheel,) = os.listdir(tmp_path / "out")
    assert wheel == "ftpdup-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / "out" / wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("ftpdup-0.2.0.dist-info/METADATA").decode()
        entry_points = archive.read("ftpdup-0.2.0.dist-info/entry_points.txt").decode()
    assert "Name: ftpdup\n" in metadata and "Version: 0.2.0\n" in metadata
    for requirement in ("py-consul", "requests", "jinja2"):
        assert f"Requires-Dist: {requirement}" in metadata
    assert "ftpdup = ftpdup.cli:main" in entry_points
    expected = {
        os.path.relpath(path, REPOSITORY)
        for path in glob.glob(os.path.join(REPOSITORY, "ftpdup", "**", "*.py"), recursive=True)
    }
    expected.add("ftpdup/templates/vsftpd.conf.j2")
    assert expected <= names
    assert not [name for name in names if name.startswith("tests/")]
