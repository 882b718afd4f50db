"""A real Consul dev agent on loopback, on ports of its own."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request

import consul

from tests.harness.procs import Process, free_port, free_port_run, wait_for

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def consul_binary() -> str:
    """Return the path of the consul binary (scripts/get-consul fetches and caches it)."""
    script = os.path.join(REPOSITORY, "scripts", "get-consul")
    return subprocess.run([script], check=True, capture_output=True, text=True).stdout.strip()


class ConsulAgent:
    """``consul agent -dev`` listening on 127.0.0.1 only.

    hcl is more agent configuration (ACLs, TLS). With tls = (CA file, client
    certificate, client key), the agent serves HTTPS only and the harness
    talks to it with that client certificate; token is the harness's ACL token.
    """

    def __init__(
        self,
        workdir: str,
        name: str = "ftpdup-test",
        hcl: str = "",
        tls: tuple[str, str, str] | None = None,
        token: str | None = None,
        address: str = "127.0.0.1",
        dns: bool = False,
        data_dir: str = "",
    ) -> None:
        """address: where it listens; dns: serve DNS too (on dns_port); data_dir: a server
        that keeps its data there across restarts, instead of a development agent."""
        self.http_port = free_port()
        self.server_port = free_port_run(3)
        self.dns_port = free_port() if dns else -1
        self.tls = tls
        self.token = token
        self.address = address
        self.url = f"{'https' if tls else 'http'}://{address}:{self.http_port}"
        self.name = name
        self.workdir = workdir
        self.hcl = hcl
        self.data_dir = data_dir
        if tls:
            self.hcl += f"\nports {{\n  https = {self.http_port}\n}}\n"
        self.process: Process | None = None

    def start(self) -> ConsulAgent:
        argv = [
            consul_binary(),
            "agent",
            *(
                ["-server", "-bootstrap-expect", "1", "-data-dir", self.data_dir]
                if self.data_dir
                else ["-dev"]
            ),
            "-client",
            self.address,
            "-bind",
            self.address,
            "-http-port",
            "-1" if self.tls else str(self.http_port),
            "-dns-port",
            str(self.dns_port),
            "-grpc-port",
            "-1",
            "-server-port",
            str(self.server_port),
            "-serf-lan-port",
            str(self.server_port + 1),
            "-serf-wan-port",
            str(self.server_port + 2),
            "-node",
            self.name,
        ]
        if self.hcl:
            config = os.path.join(self.workdir, f"consul-{self.name}.hcl")
            with open(config, "w") as handle:
                handle.write(self.hcl)
            argv += ["-config-file", config]
        self.process = Process(argv, os.path.join(self.workdir, f"consul-{self.name}.log"))
        wait_for(self._has_leader, 30, "the Consul agent to elect itself leader")
        return self

    def _has_leader(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"consul exited:\n{self.process.output()[-2000:]}")
        try:
            with urllib.request.urlopen(
                f"{self.url}/v1/status/leader", timeout=1, context=self._ssl_context()
            ) as answer:
                return bool(json.loads(answer.read()))
        except OSError:
            return False

    def _ssl_context(self):
        if not self.tls:
            return None
        import ssl

        context = ssl.create_default_context(cafile=self.tls[0])
        context.load_cert_chain(self.tls[1], self.tls[2])
        return context

    def client(self) -> consul.Consul:
        if self.tls:
            return consul.Consul(
                host=self.address,
                port=self.http_port,
                scheme="https",
                verify=self.tls[0],
                cert=(self.tls[1], self.tls[2]),
                token=self.token,
            )
        return consul.Consul(host=self.address, port=self.http_port, token=self.token)

    def put(self, key: str, value) -> None:
        """Store value (a dict is written as JSON, text as is) under key."""
        data = json.dumps(value) if isinstance(value, dict) else value
        assert self.client().kv.put(key, data)

    def delete(self, key: str, recurse: bool = False) -> None:
        self.client().kv.delete(key, recurse=recurse)

    def put_many(self, values: dict[str, object]) -> None:
        """Store many keys in as few transactions as Consul allows (64 operations each)."""
        operations = [
            {
                "KV": {
                    "Verb": "set",
                    "Key": key,
                    "Value": base64.b64encode(
                        (json.dumps(value) if isinstance(value, dict) else value).encode()
                    ).decode(),
                }
            }
            for key, value in values.items()
        ]
        headers = {"X-Consul-Token": self.token} if self.token else {}
        for first in range(0, len(operations), 64):
            body = json.dumps(operations[first : first + 64]).encode()
            request = urllib.request.Request(
                f"{self.url}/v1/txn", data=body, method="PUT", headers=headers
            )
            with urllib.request.urlopen(request, timeout=30, context=self._ssl_context()) as answer:
                assert answer.status == 200

    def register(
        self,
        service: str,
        service_id: str,
        port: int,
        address: str = "127.0.0.1",
        ttl: str | None = None,
    ):
        """Register an instance of service; with ttl, it has a TTL check, passing at first."""
        check = consul.Check.ttl(ttl) if ttl else None
        assert self.client().agent.service.register(
            service, service_id=service_id, address=address, port=port, check=check
        )
        if ttl:
            self.set_health(service_id, passing=True)

    def set_health(self, service_id: str, passing: bool) -> None:
        """Pass or fail the TTL check of a service instance registered with a ttl."""
        checks = self.client().agent.check
        (checks.ttl_pass if passing else checks.ttl_fail)(f"service:{service_id}")

    def deregister(self, service_id: str) -> None:
        self.client().agent.service.deregister(service_id)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
