"""EL9 in the Debian container, as far as dnf can tell: stand-in packages and their repository.

dnf resolves ftpdup's requirements against what EL9's BaseOS and AppStream
provide. Each stand-in below is a package with no file at all, named like
the EL9 package it stands for and providing what that package provides
(names, ``python3.9dist(...)`` provides, versions, as in EL9.4's
repositories; the container's own Debian packages do the work). They are
built with rpmbuild, put in a repository with createrepo_c, and that
repository is the only one dnf knows in the container.

Also stand-ins: a ``.pth`` file that shows the container's python3 EL9's
site-packages (/usr/lib/python3.9/site-packages, where the package installs
ftpdup), and EL9's systemd-update-helper (tests/package/el9), which EL9's
systemd macros call in the package's scriptlets.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from tests.harness.consul_agent import REPOSITORY

# name, version-release, what it provides besides its own name.
STANDINS = (
    ("bash", "5.1.8-9.el9", ("/bin/sh", "/bin/bash")),
    ("python3", "3.9.18-3.el9", ("python(abi) = 3.9", "/usr/bin/python3")),
    ("python3-setuptools", "53.0.0-12.el9",
     ("python3.9dist(setuptools) = 53", "python3dist(setuptools) = 53")),
    ("python3-requests", "2.25.1-8.el9",
     ("python3.9dist(requests) = 2.25.1", "python3dist(requests) = 2.25.1")),
    ("python3-jinja2", "2.11.3-5.el9",
     ("python3.9dist(jinja2) = 2.11.3", "python3dist(jinja2) = 2.11.3")),
    ("vsftpd", "3.0.5-5.el9", ()),
    ("shadow-utils", "4.9-8.el9", ("/usr/sbin/useradd", "/usr/sbin/userdel")),
    ("systemd", "252-32.el9", ("/usr/bin/systemctl",)),
    ("selinux-policy-targeted", "38.1.35-2.el9", ()),
    ("policycoreutils", "3.6-2.1.el9", ("/usr/sbin/semodule",)),
)  # fmt: skip
SITE_PATH = "/usr/lib/python3/dist-packages/el9-site-packages.pth"
HELPER = "/usr/lib/systemd/systemd-update-helper"
MACROS = os.path.join(REPOSITORY, "tests", "package", "el9", "macros.systemd")


def _spec(name: str, version: str, release: str, provides: tuple[str, ...]) -> str:
    lines = [
        f"Name: {name}",
        f"Version: {version}",
        f"Release: {release}",
        f"Summary: Stand-in for EL9's {name} (metadata only, no file)",
        "License: MIT",
        "BuildArch: noarch",
        *[f"Provides: {provide}" for provide in provides],
        "%description",
        f"Stand-in for EL9's {name}: what it provides, for dnf; no file.",
        "%files",
    ]
    return "\n".join(lines) + "\n"


def build_repository(folder: str) -> str:
    """Build the stand-in packages into folder and make it a dnf repository; return folder."""
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as top:
        for name, version_release, provides in STANDINS:
            version, release = version_release.split("-", 1)
            spec = os.path.join(top, f"{name}.spec")
            with open(spec, "w") as handle:
                handle.write(_spec(name, version, release, provides))
            subprocess.run(
                ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
                 "--define", f"_rpmdir {folder}", "--define", "_build_name_fmt %%{NAME}.rpm",
                 spec],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
    subprocess.run(["createrepo_c", "-q", folder], check=True)
    return folder


def prepare(box, repository: str) -> None:
    """Make the container look like EL9 to dnf: the stand-ins' repository as its only one,
    EL9's release version, the systemd update helper and python's site folder."""
    box.copy_in(repository, "/srv/el9-standins")
    box.write(
        "/etc/yum.repos.d/el9-standins.repo",
        "[el9-standins]\nname=Stand-ins for EL9 BaseOS and AppStream\n"
        "baseurl=file:///srv/el9-standins\ngpgcheck=0\nenabled=1\n",
    )
    box.write("/etc/dnf/vars/releasever", "9\n")
    box.write(SITE_PATH, "/usr/lib/python3.9/site-packages\n")
    helper = os.path.join(REPOSITORY, "tests", "package", "el9", "systemd-update-helper")
    box.copy_in(helper, HELPER)
    box.run("chmod", "0755", HELPER)


def dnf(box, *argv: str, check: bool = True):
    """Run dnf in the container (no GPG check for local files: they are built here), then
    what EL9's systemd package's file trigger runs after a transaction."""
    done = box.run("dnf", "-y", "-q", "--setopt=localpkg_gpgcheck=0", *argv, check=check)
    box.run(HELPER, "system-reload-restart", check=False)
    return done
