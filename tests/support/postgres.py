"""A throwaway PostgreSQL cluster from the local server binaries, for the test suite."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_bindir() -> Path | None:
    """The newest local PostgreSQL server bin directory (TEST_PG_BINDIR overrides)."""
    if os.environ.get("TEST_PG_BINDIR"):
        return Path(os.environ["TEST_PG_BINDIR"])
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    """A loopback port nothing listens on now, for any server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """initdb + pg_ctl in a temp dir, on a free loopback port; run as `postgres` when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.data = self.dir / "data"
        self.port = free_port()
        # initdb refuses to run as root.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.dir, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        # Durability is irrelevant for a throwaway test cluster; speed is not.
        self.options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self.start_server()

    def start_server(self) -> None:
        """Start the server of the initialised cluster; returns once it accepts connections."""
        self._run(
            str(self.bindir / "pg_ctl"),
            *("-D", str(self.data), "-o", self.options, "-l", str(self.dir / "log"), "-w", "start"),
        )

    def stop_server(self) -> None:
        """Stop the server at once, as a crash would (the fault tests); start_server brings it back."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def is_running(self) -> bool:
        command = [*self.as_owner, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
