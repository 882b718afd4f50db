"""End to end: Consul config -> vsftpd upload -> sprinkler -> FTP and HTTP carriers.

Every component is real: a Consul dev agent, vsftpd as the ingest (lane users
log in by FTP), pyftpdlib and WsgiDAV as subscribers, and ftpdup's workers as
separate processes.
"""

from __future__ import annotations

import ftplib
import io
import os
import socket
import struct
import threading
import time

import pytest

from tests.harness.procs import wait_for

pytestmark = pytest.mark.e2e


def sample_files(count: int = 6, tag: str = "f") -> dict[str, bytes]:
    """Return files of assorted sizes and names (empty, tiny, large, spaces, non-ASCII)."""
    sizes = [0, 1, 4096, 3 * 1024 * 1024 + 7, 65536, 123]
    names = ["empty.bin", "one byte", "bulletin.txt", "big.grib2", "élan-réunion.dat", ".dot"]
    files = {}
    for index in range(count):
        name = f"{tag}-{names[index % len(names)]}-{index}"
        files[name] = os.urandom(sizes[index % len(sizes)])
    return files


def test_every_subscriber_gets_every_file_byte_identical(world):
    world.add_lane("obs", exclude=["*.t"])
    world.add_ftp_subscriber("obs", "ftpsub", directory="incoming/obs")
    world.add_http_subscriber("obs", "websub", directory="racine/data/")
    world.add_service_subscriber("obs", "cluster", instances=2, directory="store")
    pipeline = world.start()
    assert sorted(pipeline.desired.carriers) == sorted(
        [
            "obs:ftpsub",
            "obs:websub",
            f"obs:cluster:svc-{world.tag}-cluster-0",
            f"obs:cluster:svc-{world.tag}-cluster-1",
        ]
    )

    files = sample_files()
    world.upload("obs", files)
    world.wait_delivered("obs", files)
    wait_for(lambda: not world.queued_files(), 30, "lane, staging, pending and spools to empty")
    # FTP temporary names never remain at the destination.
    ftp_root = world.destinations[("obs", "ftpsub")][0]
    assert sorted(os.listdir(ftp_root)) == sorted(files)


def test_python_literal_settings_and_excluded_patterns(world):
    world.add_lane("met", exclude=["*.t", "*.part", "tmp_*"], python_literal=True)
    world.add_http_subscriber("met", "web")
    world.start()
    excluded = {"a.t": b"x", "b.part": b"y", "tmp_c": b"z"}
    wanted = {"wanted.txt": b"payload"}
    world.upload("met", {**excluded, **wanted})
    world.wait_delivered("met", wanted)
    time.sleep(1.0)
    destination = world.destinations[("met", "web")][0]
    assert sorted(os.listdir(destination)) == ["wanted.txt"]
    # Excluded files stay in the lane (the lane's lifetime clean-up removes them).
    assert sorted(os.listdir(world.layout.incoming("met"))) == sorted(excluded)


def test_rename_after_upload_is_forwarded_under_the_final_name(world):
    world.add_lane("ren", exclude=["*.t"])
    world.add_ftp_subscriber("ren", "ftpsub")
    world.start()
    ftp = world.ingest.login(world.lane_users["ren"])
    ftp.storbinary("STOR report.csv.t", io.BytesIO(b"a,b\n1,2\n"))
    ftp.rename("report.csv.t", "report.csv")
    ftp.quit()
    world.wait_delivered("ren", {"report.csv": b"a,b\n1,2\n"})
    assert os.listdir(world.destinations[("ren", "ftpsub")][0]) == ["report.csv"]


def test_upload_in_progress_is_not_forwarded_before_it_completes(world):
    world.add_lane("slow")
    world.add_http_subscriber("slow", "web")
    world.start()
    data = os.urandom(2 * 1024 * 1024)
    destination = os.path.join(world.destinations[("slow", "web")][0], "partial.bin")
    ftp = world.ingest.login(world.lane_users["slow"])
    ftp.voidcmd("TYPE I")
    connection = ftp.transfercmd("STOR partial.bin")
    connection.sendall(data[: len(data) // 2])
    # The half-written file is in the lane, and stays there while the upload is open.
    lane_file = os.path.join(world.layout.incoming("slow"), "partial.bin")
    wait_for(lambda: os.path.exists(lane_file), 10, "the upload to start")
    time.sleep(2.0)
    assert os.path.exists(lane_file)
    assert not os.path.exists(destination)
    connection.sendall(data[len(data) // 2 :])
    connection.close()
    ftp.voidresp()
    ftp.quit()
    world.wait_delivered("slow", {"partial.bin": data})


def test_aborted_uploads_are_not_forwarded(world):
    world.add_lane("abort")
    world.add_http_subscriber("abort", "web")
    world.start()
    ftp = world.ingest.login(world.lane_users["abort"])
    ftp.voidcmd("TYPE I")
    for number in range(10):
        connection = ftp.transfercmd(f"STOR aborted-{number}.bin")
        connection.sendall(os.urandom(100000))
        # Reset the data connection: vsftpd sees a failed upload and deletes it.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        with pytest.raises(ftplib.error_temp):
            ftp.voidresp()
    ftp.quit()
    world.upload("abort", {"complete.bin": b"whole"})
    world.wait_delivered("abort", {"complete.bin": b"whole"})
    assert os.listdir(world.destinations[("abort", "web")][0]) == ["complete.bin"]
    assert world.queued_files() == []


def test_lane_without_subscriber_deletes_its_files(world):
    world.add_lane("void")
    world.agent.put(world.key("void", "subscribers/"), None)
    pipeline = world.start()
    assert pipeline.desired.sprinklers["void"].outputs == ()
    world.upload("void", {"nobody.txt": b"lost on purpose"})
    wait_for(
        lambda: "deleted nobody.txt" in pipeline.worker("sprinkler", "void").output(),
        20,
        "the sprinkler to delete the file",
    )
    assert world.queued_files() == []


def test_subscriber_that_is_down_gets_its_files_once_back(world):
    world.add_lane("down")
    server = world.add_ftp_subscriber("down", "flaky")
    world.add_http_subscriber("down", "steady")
    server.stop()
    pipeline = world.start()
    files = sample_files(4, tag="late")
    world.upload("down", files)
    # The working subscriber is not held up by the broken one.
    steady = world.destinations[("down", "steady")][0]
    wait_for(lambda: sorted(os.listdir(steady)) == sorted(files), 60, "the steady subscriber")
    spool = world.layout.spool("down:flaky")
    wait_for(lambda: sorted(os.listdir(spool)) == sorted(files), 30, "files queued for flaky")
    wait_for(
        lambda: "subscriber failing" in pipeline.worker("carrier", "down:flaky").output(),
        30,
        "a failed delivery attempt",
    )
    time.sleep(3)
    assert sorted(os.listdir(spool)) == sorted(files)
    server.start()
    world.wait_delivered("down", files, timeout=60)
    wait_for(lambda: not world.queued_files(), 30, "the spool to empty")


def test_thousand_files_through_one_lane(world):
    world.add_lane("bulk")
    world.add_ftp_subscriber("bulk", "ftpsub")
    world.add_http_subscriber("bulk", "websub")
    world.start()
    files = {f"obs-{number:04d}.txt": os.urandom(number % 700) for number in range(1000)}
    world.upload("bulk", files)
    world.wait_delivered("bulk", files, timeout=300)
    wait_for(lambda: not world.queued_files(), 60, "all queues to empty")
    for roots in world.destinations.values():
        assert len(os.listdir(roots[0])) == 1000


def test_killed_workers_lose_and_truncate_nothing(world):
    world.add_lane("crash")
    world.add_ftp_subscriber("crash", "ftpsub")
    world.add_http_subscriber("crash", "websub")
    pipeline = world.start()
    files = {f"c-{number:03d}.bin": os.urandom(20000 + number * 97) for number in range(300)}

    def upload_slowly() -> None:  # about 5 s of arrivals, for the kills to fall among them
        for name, data in files.items():
            world.upload("crash", {name: data})
            time.sleep(0.01)

    uploader = threading.Thread(target=upload_slowly)
    uploader.start()
    workers = [("sprinkler", "crash"), ("carrier", "crash:ftpsub"), ("carrier", "crash:websub")]
    landed = 0
    turn = 0
    # Crash (SIGKILL) and restart one worker after another while the files arrive, each
    # kill on a worker that is running and has work to do.
    while uploader.is_alive() or (turn < 6 and world.queued_files()):
        time.sleep(0.15)
        kind, name = workers[turn % len(workers)]
        busy = world.queued_files()
        if pipeline.worker(kind, name).alive() and busy:
            pipeline.restart_worker(kind, name, kill=True)
            landed += 1
        turn += 1
    uploader.join()
    assert landed >= 12, f"only {landed} kills hit a running worker with files queued"
    world.wait_delivered("crash", files, timeout=120)
    wait_for(lambda: not world.queued_files(), 60, "all queues to empty")
    for roots in world.destinations.values():
        assert sorted(os.listdir(roots[0])) == sorted(files)


def test_sigterm_finishes_the_file_in_flight(world):
    world.add_lane("term")
    world.add_http_subscriber("term", "websub")
    pipeline = world.start()
    data = os.urandom(1024 * 1024) * 300  # 300 MiB: long enough to stop it mid-transfer
    world.upload("term", {"huge.bin": data})
    destination = os.path.join(world.destinations[("term", "websub")][0], "huge.bin")
    carrier = pipeline.worker("carrier", "term:websub")
    wait_for(lambda: os.path.exists(destination), 60, "the transfer to start", interval=0.01)
    assert carrier.stop(timeout=120) == 0
    assert os.path.getsize(destination) == len(data)
    with open(destination, "rb") as handle:
        assert handle.read() == data
    assert world.queued_files() == []
    # The file was still moving when SIGTERM came: the stop is logged before its delivery.
    log = carrier.output()
    assert log.index("received SIGTERM, stopping") < log.index("delivered huge.bin")
