"""An uploader that never stops: files into a lane over FTP, and what vsftpd acknowledged."""

from __future__ import annotations

import ftplib
import io
import os
import random
import threading
import time
from collections.abc import Sequence

from tests.harness.system_world import SystemWorld


class Uploads(threading.Thread):
    """Upload files into a lane without pause, sizes and pauses drawn at random (seeded).

    An upload that fails is not acknowledged; the next file gets a new name
    (the uploader would send the refused one again, under its own name) and a
    new session. ``refused`` counts those failures.
    """

    def __init__(self, world: SystemWorld, lane: str, *, prefix: str, sizes: Sequence[int],
                 pause: tuple[float, float], seed: int | None = None) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.world = world
        self.lane = lane
        self.prefix = prefix
        self.sizes = sizes
        self.pause = pause
        self.random = random.Random(seed)
        self.acknowledged: dict[str, bytes] = {}
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        settings = self.world.lanes[self.lane]
        number = 0
        while not self.stopping.is_set():
            try:
                ftp = ftplib.FTP()
                ftp.connect("127.0.0.1", self.world.box.ftp_port, timeout=30)
                ftp.login(settings["user"], settings["password"])
                while not self.stopping.is_set():
                    name = f"{self.prefix}-{number:05d}.bin"
                    data = os.urandom(self.random.choice(self.sizes))
                    number += 1
                    ftp.storbinary(f"STOR {name}", io.BytesIO(data))
                    self.acknowledged[name] = data
                    time.sleep(self.random.uniform(*self.pause))
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                self.refused += 1
                time.sleep(0.5)
