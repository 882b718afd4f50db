"""The Vagrantfile: valid for Vagrant, and everything it names is in the checkout.

A virtual machine cannot boot here; README.md says what was exercised.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.harness.consul_agent import REPOSITORY

pytestmark = pytest.mark.package


@pytest.mark.parametrize("box", [None, "rockylinux/9"])
def test_vagrant_validates_the_vagrantfile(tmp_path, box):
    for name in ("Vagrantfile", "scripts", "ansible"):
        source = os.path.join(REPOSITORY, name)
        copy = shutil.copytree if os.path.isdir(source) else shutil.copy2
        copy(source, tmp_path / name)
    environment = {**os.environ, "VAGRANT_HOME": str(tmp_path / ".vagrant.d")}
    if box:
        environment["FTPDUP_BOX"] = box
    done = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Vagrantfile validated successfully" in done.stdout


def test_what_the_vagrantfile_names_exists():
    with open(os.path.join(REPOSITORY, "Vagrantfile")) as handle:
        text = handle.read()
    assert 'ENV.fetch("FTPDUP_BOX", "almalinux/9")' in text and "FTPDUP_BOX_URL" in text
    for path in re.findall(r'path: "([^"]+)"', text):
        assert os.access(os.path.join(REPOSITORY, path), os.X_OK), path
    provisioning = re.search(r'provisioning_path = "/vagrant/([^"]+)"', text)[1]
    for name in re.findall(r'(?:playbook|inventory_path) = "(?:/vagrant/ansible/)?([^"]+)"', text):
        assert os.path.exists(os.path.join(REPOSITORY, provisioning, name)), name
    assert os.access(os.path.join(REPOSITORY, "scripts", "vagrant-demo"), os.X_OK)
