"""The RPM: lint, dependencies and file list, then installed and upgraded with dnf.

The container is Debian 12 with a real systemd 252 (EL9's version); dnf
resolves the package's requirements against stand-ins of EL9's packages
(tests.harness.el9), and Debian's python3-requests, python3-jinja2 and
vsftpd do their work. The scriptlets are an EL9 build's (EL9's systemd
macros). Nothing else of ftpdup is on the container's paths: no virtual
environment, no checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.harness import el9
from tests.harness.consul_agent import REPOSITORY
from tests.harness.installed import SETTINGS
from tests.harness.procs import free_port, wait_for
from tests.harness.system_world import SystemWorld
from tests.harness.uploads import Uploads

pytestmark = pytest.mark.package

RPMLINT_CONFIG = os.path.join(REPOSITORY, "packaging", "rpm", "rpmlintrc.toml")
# As rpm's Python dependency generator (the one EL9 runs) makes them from the
# package's metadata, the bundled py-consul and sdnotify excluded.
EL9_REQUIRES = {
    "/bin/sh",
    "/usr/bin/python3",
    "config(ftpdup) = 0.2.0-1",
    "python(abi) = 3.9",
    "python3.9dist(jinja2) >= 2.11",
    "python3.9dist(requests) >= 2.25",
    "python3.9dist(setuptools)",
    "shadow-utils",
    "systemd",
    "vsftpd",
}


def query(rpm: str, *options: str) -> list[str]:
    done = subprocess.run(["rpm", "-qp", *options, rpm], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_the_rpm_and_its_source_package_lint_clean(rpms):
    source = rpms[1].replace(".noarch.rpm", ".src.rpm")
    done = subprocess.run(
        ["rpmlint", "-c", RPMLINT_CONFIG, source, rpms[1]], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 errors, 0 warnings" in done.stdout, done.stdout


def test_the_rpm_requires_what_el9_provides_and_bundles_the_rest(rpms):
    requires = {line for line in query(rpms[1], "-R") if not line.startswith("rpmlib(")}
    assert requires == EL9_REQUIRES
    # Every requirement is met by what EL9's packages provide (their stand-ins'
    # provides, which are EL9's).
    for requirement in requires - {"config(ftpdup) = 0.2.0-1"}:
        name = requirement.split()[0]
        assert any(
            name == standin or any(p.split()[0] == name for p in provides)
            for standin, _, provides in el9.STANDINS
        ), requirement
    provides = query(rpms[1], "--provides")
    assert "bundled(python3dist(py-consul)) = 1.6.1" in provides
    assert "bundled(python3dist(sdnotify)) = 0.3.2" in provides
    assert query(rpms[1], "--recommends") == ["(ftpdup-selinux if selinux-policy-targeted)"]
    files = query(rpms[1], "-l")
    for path in (
        "/usr/bin/ftpdup",
        "/usr/lib/systemd/system/ftpdup-carrier@.service",
        "/usr/lib/systemd/system/ftpdup.target",
        "/usr/lib/sysusers.d/ftpdup.conf",
        "/usr/lib/tmpfiles.d/ftpdup.conf",
        "/usr/lib/sysctl.d/60-ftpdup.conf",
        "/etc/ftpdup/ftpdup.conf",
        "/usr/share/ftpdup/python/consul/__init__.py",
        "/usr/share/ftpdup/python/sdnotify/__init__.py",
        "/usr/share/doc/ftpdup/migration.md",
        "/etc/logrotate.d/ftpdup",
        "/usr/share/licenses/ftpdup/LICENSE.py-consul",
        "/usr/share/man/man1/ftpdup.1.gz",
        "/var/lib/ftpdup/spool",
    ):
        assert path in files, path
    allowed = ("/usr/bin/", "/usr/lib/", "/usr/share/", "/etc/ftpdup", "/etc/logrotate.d/ftpdup",
               "/var/lib/ftpdup")  # fmt: skip
    assert [path for path in files if not path.startswith(allowed)] == []
    assert not [path for path in files if "consul/aio.py" in path]  # needs aiohttp
    # The bundled libraries are compiled, and the package owns what was compiled.
    assert [path for path in files if "/python/consul/__pycache__/" in path]
    assert [path for path in files if "/python/sdnotify/__pycache__/" in path]
    configs = query(rpms[1], "-c")
    assert configs == ["/etc/ftpdup/ftpdup.conf", "/etc/logrotate.d/ftpdup"]
    scripts = "\n".join(query(rpms[1], "--scripts"))
    for expected in ("systemd-sysusers", "systemd-tmpfiles --create", "60-ftpdup.conf"):
        assert expected in scripts
    # EL9's macros: the upgrade marks every running worker for a restart.
    assert (
        "systemd-update-helper mark-restart-system-units ftpdup-watch.service "
        "'ftpdup-sprinkler@*.service' 'ftpdup-carrier@*.service'"
    ) in scripts


def test_sources_are_what_git_tracks_and_archives_what_is_pinned(tmp_path):
    """Source0 holds the tracked files only; a downloaded archive whose digest is not the
    one pinned in packaging/rpm/sources stops the build."""
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", REPOSITORY, str(checkout)], check=True)
    (checkout / "stray-notes.txt").write_text("an untracked file\n")
    cache = tmp_path / "cache"
    done = subprocess.run(
        [str(checkout / "scripts" / "build-rpm"), str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "FTPDUP_TEST_CACHE": str(cache)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (source,) = [name for name in os.listdir(tmp_path / "out") if name.endswith(".src.rpm")]
    listing = subprocess.run(
        f"rpm2cpio {tmp_path / 'out' / source} | cpio -i --to-stdout 'ftpdup-*.tar.gz' "
        "2>/dev/null | tar -tzf -",
        shell=True, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "ftpdup-0.2.0/packaging/rpm/ftpdup.spec" in listing
    assert not [path for path in listing if "stray-notes" in path]

    pinned = checkout / "packaging" / "rpm" / "sources"
    pinned.write_text(pinned.read_text().replace("SHA256 (sdnotify", "SHA256 (sdnotify", 1)
                      .replace("= 73977fc7", "= 00000000"))  # fmt: skip
    for archive in cache.iterdir():
        archive.unlink()
    done = subprocess.run(
        [str(checkout / "scripts" / "build-rpm"), str(tmp_path / "out2")],
        capture_output=True, text=True, env={**os.environ, "FTPDUP_TEST_CACHE": str(cache)},
    )  # fmt: skip
    assert done.returncode != 0
    assert "sdnotify-0.3.2.tar.gz: its SHA-256 is not the one pinned" in done.stderr


def test_the_selinux_policy_compiles_and_opens_only_the_lanes_to_vsftpd(rpms, tmp_path):
    """SELinux cannot be enforced here: the module is compiled (refpolicy's devel Makefile,
    as the spec's %build does), its rules and file contexts read, the package's scriptlets
    checked."""
    source = os.path.join(REPOSITORY, "packaging", "selinux")
    for name in ("ftpdup.te", "ftpdup.fc", "ftpdup.if"):
        shutil.copy(os.path.join(source, name), tmp_path)
    subprocess.run(
        ["make", "-f", "/usr/share/selinux/devel/Makefile", "ftpdup.pp"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    assert (tmp_path / "ftpdup.pp").stat().st_size > 0
    rules = [
        line.strip()
        for line in (tmp_path / "ftpdup.te").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = [line for line in rules if line.endswith(")") and "pattern" in line]
    assert allowed == [
        "manage_dirs_pattern(ftpd_t, ftpdup_lane_t, ftpdup_lane_t)",
        "manage_files_pattern(ftpd_t, ftpdup_lane_t, ftpdup_lane_t)",
    ]
    assert "files_search_var_lib(ftpd_t)" in rules  # to reach /var/lib/ftpdup/incoming
    assert not [line for line in rules if "bool" in line]  # no boolean
    contexts = (tmp_path / "ftpdup.fc").read_text().split()
    assert contexts == [
        "/var/lib/ftpdup/incoming(/.*)?",
        "gen_context(system_u:object_r:ftpdup_lane_t,s0)",
    ]
    folder, name = os.path.split(rpms[1])
    selinux = os.path.join(folder, name.replace("ftpdup-", "ftpdup-selinux-", 1))
    assert query(selinux, "-l")[-1] == "/usr/share/selinux/packages/targeted/ftpdup.pp.bz2"
    scripts = "\n".join(query(selinux, "--scripts"))
    assert (
        "semodule -n -s targeted -i /usr/share/selinux/packages/targeted/ftpdup.pp.bz2" in scripts
    )
    assert "semodule -n -s targeted -r ftpdup" in scripts
    assert scripts.count("restorecon -R /var/lib/ftpdup/incoming") == 2


@pytest.fixture(scope="module")
def installed(bare_container, package_consul, rpms, base_dir):
    """Release 1 installed with rpm, its settings edited, ftpdup.target enabled."""
    box = bare_container
    box.copy_in(rpms[1], "/tmp/ftpdup-1.rpm")
    box.copy_in(rpms[2], "/tmp/ftpdup-2.rpm")
    el9.dnf(box, "install", "/tmp/ftpdup-1.rpm")
    pasv = free_port()
    box.ftp_port = free_port()
    box.prefix = "ftpdup-package"
    package_consul.put(f"{box.prefix}/incoming_directories/", None)
    edited = SETTINGS.format(
        consul_url=package_consul.url,
        prefix=box.prefix,
        restart_period=3600,
        ftp_port=box.ftp_port,
        collectd_service="",
        pasv=pasv,
        pasv_max=pasv + 10,
    )
    box.write("/etc/ftpdup/ftpdup.conf", "# edited by the operator\n" + edited)
    box.run("systemctl", "enable", "--now", "ftpdup.target")
    wait_for(lambda: box.is_active("ftpdup-watch.service") == "active", 60, "ftpdup-watch")
    world = SystemWorld(box, package_consul, base_dir)
    yield box, world
    world.close()


def test_the_rpm_installs_runs_its_scriptlets_and_delivers(installed):
    box, world = installed
    assert box.run("sh", "-c", "command -v ftpdup").stdout.strip() == "/usr/bin/ftpdup"
    assert box.run("head", "-1", "/usr/bin/ftpdup").stdout.startswith("#!/usr/bin/python3")
    where = box.run(
        "python3", "-c",
        "import ftpdup, consul, sdnotify as s; print(ftpdup.__file__, consul.__file__, s.__file__)",
    )  # fmt: skip
    assert where.stdout.split() == [
        "/usr/lib/python3.9/site-packages/ftpdup/__init__.py",
        "/usr/share/ftpdup/python/consul/__init__.py",
        "/usr/share/ftpdup/python/sdnotify/__init__.py",
    ]
    # dnf installed EL9's packages (their stand-ins) for what the package requires.
    installed = box.run("rpm", "-qa", "--qf", "%{NAME}\\n").stdout.split()
    assert {"python3-requests", "python3-jinja2", "vsftpd", "ftpdup"} <= set(installed)
    assert "ftpdup" in box.run("getent", "passwd", "ftpdup").stdout  # sysusers in %pre
    spool = box.run("stat", "-c", "%a %U %G", "/var/lib/ftpdup/spool").stdout.split()
    assert spool == ["2770", "ftpdup", "ftpdup"]  # tmpfiles in %post
    listing = box.run("sh", "-c", "ls /usr/lib/systemd/system/ftpdup*").stdout.split()
    box.run("systemd-analyze", "verify", *listing)

    lane = world.add_lane("rpm")
    world.add_ftp_subscriber(lane, "ftpsub")
    world.add_http_subscriber(lane, "websub")
    for unit in (world.unit("sprinkler", lane), world.unit("carrier", f"{lane}:websub")):
        world.wait_active(unit)
    files = {f"from-the-rpm-{n}.bin": os.urandom(10000 + n) for n in range(5)}
    world.upload(lane, files)
    world.wait_at(
        world.destinations[f"{lane}:ftpsub"] + world.destinations[f"{lane}:websub"], files
    )


def test_an_upgrade_while_files_flow_keeps_settings_lanes_and_every_file(installed):
    box, world = installed
    lane = world.add_lane("upg")
    world.add_ftp_subscriber(lane, "ftpflow")
    world.add_http_subscriber(lane, "webflow")
    units = [world.unit("sprinkler", lane)]
    units += [world.unit("carrier", f"{lane}:{sub}") for sub in ("ftpflow", "webflow")]
    for unit in units:
        world.wait_active(unit)
    before = {unit: box.main_pid(unit) for unit in units}
    vsftpd = box.main_pid("ftpdup-vsftpd.service")
    uploader = Uploads(world, lane, prefix="flow", sizes=range(20000, 20977), pause=(0.02, 0.02))
    uploader.start()
    time.sleep(3)
    el9.dnf(box, "upgrade", "/tmp/ftpdup-2.rpm")
    time.sleep(3)
    uploader.stopping.set()
    uploader.join(30)
    assert box.run("rpm", "-q", "ftpdup").stdout.strip().startswith("ftpdup-0.2.0-2")
    for unit in units:  # restarted by the upgrade, and running again
        world.wait_active(unit)
        assert box.main_pid(unit) != before[unit]
    files = uploader.acknowledged
    assert len(files) > 50
    print(f"\n{len(files)} files acknowledged during the upgrade, {uploader.refused} refused")
    # vsftpd was not restarted: no upload was cut.
    assert box.main_pid("ftpdup-vsftpd.service") == vsftpd and uploader.refused == 0
    folders = world.destinations[f"{lane}:ftpflow"] + world.destinations[f"{lane}:webflow"]
    world.wait_at(folders, files, timeout=120)
    with open(box.path("/etc/ftpdup/ftpdup.conf")) as settings:
        assert settings.read().startswith("# edited by the operator\n")
    assert not os.path.exists(box.path("/etc/ftpdup/ftpdup.conf.rpmnew"))
    assert box.run("getent", "passwd", world.lanes[lane]["user"]).returncode == 0


def test_an_erase_stops_every_unit_and_keeps_data_and_edits(installed):
    box, world = installed
    lane = world.add_lane("erase")
    server = world.add_ftp_subscriber(lane, "down")
    unit = world.unit("carrier", f"{lane}:down")
    world.wait_active(unit)
    server.stop()  # its files stay queued
    files = {f"queued-{n}.bin": os.urandom(3000) for n in range(3)}
    world.upload(lane, files)
    spool = box.path(world.layout.spool(f"{lane}:down"))
    wait_for(lambda: sorted(os.listdir(spool)) == sorted(files), 30, "files queued")

    el9.dnf(box, "remove", "ftpdup")
    running = box.run(
        "systemctl", "list-units", "--no-legend", "--plain", "--state=active,activating", "ftpdup*"
    ).stdout
    assert running.strip() == ""
    assert box.run("sh", "-c", "command -v ftpdup", check=False).returncode != 0
    kept = box.path("/etc/ftpdup/ftpdup.conf.rpmsave")
    with open(kept) as settings:
        assert settings.read().startswith("# edited by the operator\n")
    assert sorted(os.listdir(spool)) == sorted(files)  # queued files are kept
    assert os.listdir(box.path("/etc/ftpdup/workers/carrier"))  # the manager's specs stay
    wants = box.path("/etc/systemd/system/ftpdup.target.wants")
    assert not os.path.exists(wants) or not os.listdir(wants)
    world.lanes.clear()  # nothing runs any more to remove them
