"""The demo: Consul with an example lane and two subscribers, ftpdup in a booted container."""

from __future__ import annotations

import ftplib
import io
import json
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib

from tests.harness.consul_agent import REPOSITORY, ConsulAgent
from tests.harness.container import Container
from tests.harness.ftp_server import FtpSubscriber, HttpSubscriber
from tests.harness.procs import free_port, wait_for

WORKDIR = "/var/tmp/ftpdup-demo"
STATE = os.path.join(WORKDIR, "pids.json")
LANE = {
    "user": "demo_up",
    "password": "demo-secret",
    "uid": 4100,
    "lifetime": 60,
    "exclude": ["*.t"],
}


def stop() -> None:
    """Stop what a previous demo left running."""
    try:
        with open(STATE) as handle:
            pids = json.load(handle)
    except FileNotFoundError:
        print("no demo is running")
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    os.unlink(STATE)
    print("demo stopped")


def main() -> None:
    if sys.argv[1:] == ["stop"]:
        stop()
        return
    if os.path.exists(STATE):
        stop()
    shutil.rmtree(WORKDIR, ignore_errors=True)  # a fresh start: no file from an earlier demo
    os.makedirs(WORKDIR, mode=0o755)
    print("== starting Consul, an FTP subscriber and an HTTP (WebDAV) subscriber on 127.0.0.1")
    agent = ConsulAgent(WORKDIR, name="demo").start()
    ftp_sub = FtpSubscriber(os.path.join(WORKDIR, "ftp-subscriber"), WORKDIR).start()
    web_sub = HttpSubscriber(os.path.join(WORKDIR, "web-subscriber"), WORKDIR).start()
    os.makedirs(os.path.join(web_sub.root, "incoming"), exist_ok=True)

    print("== booting a throwaway Debian 12 container with systemd (changes vanish at stop)")
    box = Container(WORKDIR, name="ftpdup-demo").boot()
    with open(STATE, "w") as handle:
        json.dump(
            [p.pid for p in (agent.process, ftp_sub.process, web_sub.process, box.process)], handle
        )
    print("== installing ftpdup from this checkout inside it")
    box.copy_in(REPOSITORY, "/opt/ftpdup/src")
    box.run("/opt/ftpdup/src/scripts/install-from-checkout")
    ftp_port, pasv = free_port(), free_port()
    box.write(
        "/etc/ftpdup/ftpdup.conf",
        f"""[ftpdup]
consul_url = {agent.url}

[vsftpd]
listen_address = 127.0.0.1
listen_port = {ftp_port}
pasv_min_port = {pasv}
pasv_max_port = {pasv + 10}
""",
    )
    box.run("systemctl", "enable", "--now", "ftpdup.target")

    print("== writing lane 'demo' and its two subscribers into Consul")
    base = "ftp_duplicator/incoming_directories/demo"
    agent.put(f"{base}/settings", LANE)
    agent.put(
        f"{base}/subscribers/ftp1",
        {
            "mode": "ftp",
            "host": "127.0.0.1",
            "port": ftp_sub.port,
            "user": ftp_sub.user,
            "password": ftp_sub.password,
        },
    )
    agent.put(
        f"{base}/subscribers/web1",
        {"mode": "http", "host": "127.0.0.1", "port": web_sub.port, "directory": "incoming"},
    )
    for unit in (
        "ftpdup-sprinkler@demo.service",
        "ftpdup-carrier@demo:ftp1.service",
        "ftpdup-carrier@demo:web1.service",
    ):
        wait_for(lambda unit=unit: box.is_active(unit) == "active", 60, unit)
    print(box.run("systemctl", "list-units", "--no-pager", "ftpdup*").stdout)

    print(f"== uploading hello.txt by FTP as {LANE['user']} to the container's vsftpd")
    session = ftplib.FTP()
    session.connect("127.0.0.1", ftp_port, timeout=30)
    session.login(LANE["user"], LANE["password"])
    session.storbinary("STOR hello.txt", io.BytesIO(b"Hello from ftpdup!\n"))
    session.quit()
    targets = [
        os.path.join(ftp_sub.root, "hello.txt"),
        os.path.join(web_sub.root, "incoming", "hello.txt"),
    ]
    started = time.monotonic()
    wait_for(lambda: all(os.path.exists(t) for t in targets), 60, "the deliveries")
    print(f"== delivered to both subscribers in {time.monotonic() - started:.2f} s:")
    for target in targets:
        with open(target) as handle:
            print(f"   {target}: {handle.read().strip()}")
    print(box.journal("ftpdup-carrier@demo:web1.service").strip().splitlines()[-1])
    enter = f"nsenter -t {box.leader} -a"
    print(f"""
== look around (the container keeps running):
   {enter} systemctl list-units 'ftpdup*'
   {enter} systemctl status 'ftpdup-carrier@demo:ftp1.service'
   {enter} journalctl -u 'ftpdup-carrier@*' -u 'ftpdup-sprinkler@*'
   {enter} ftpdup plan
   {enter} ls -R /var/lib/ftpdup
   Consul UI/API: {agent.url}/v1/kv/ftp_duplicator/?recurse
== stop everything: scripts/demo stop""")


if __name__ == "__main__":
    main()
