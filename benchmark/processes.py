"""The servers a benchmark starts on loopback, and what /proc says about them.

Every process is started in its own session, so that stopping it also stops
the workers it forks; :class:`Processes` stops whatever is still running when
its ``with`` block ends, however it ends (Ctrl-C included).
"""

import http.client
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).parent.parent
_TICKS = os.sysconf('SC_CLK_TCK')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, what: str = 'a condition') -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f'gave up waiting for {what}')
        time.sleep(0.02)


def _stat_fields(pid: int) -> list[str]:
    stat = pathlib.Path(f'/proc/{pid}/stat').read_text()
    # NOTE: The command name (field 2) may hold spaces; count after its ')'.
    return stat.rpartition(')')[2].split()


def _session(session: int) -> list[int]:
    """The processes of a session: a server and every process it started
    (uvicorn's image worker processes and their fork server too)."""
    members = []
    for entry in pathlib.Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[3]) == session:
                    members.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return members


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a server and all its processes, those that
    ended included (as far as their parents reaped them)."""
    total = 0
    for member in _session(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        total += sum(int(fields[index]) for index in (11, 12, 13, 14))
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """The memory of a server and all its processes: the sum of their
    proportional set sizes (shared pages counted once, in parts)."""
    total = 0
    for member in _session(pid):
        try:
            rollup = pathlib.Path(f'/proc/{member}/smaps_rollup').read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith('Pss:'):
                total += int(line.split()[1]) * 1024
    return total


class Server:
    """One server process listening on ``port``, with its output in a log file."""

    def __init__(self, name: str, command: list[str], port: int, env=None) -> None:
        self.name = name
        self.port = port
        self.log = pathlib.Path(tempfile.mkstemp(prefix=f'asgilook-{name}-')[1])
        with self.log.open('wb') as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def output(self) -> str:
        return self.log.read_text(errors='replace')

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()


class Processes:
    """Starts servers and stops every one of them on the way out."""

    def __init__(self) -> None:
        self.started: list[Server] = []
        # NOTE: Stopped ones too, so that their logs can be read at the end.
        self.every: list[Server] = []
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix='asgilook-bench-'))

    def __enter__(self) -> 'Processes':
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()
        shutil.rmtree(self.directory, ignore_errors=True)

    def stop_all(self) -> None:
        while self.started:
            self.stop(self.started[-1])

    def redis(self) -> Server:
        binary = shutil.which('redis-server')
        if binary is None:
            raise SystemExit('redis-server is not installed (apt-get install redis)')
        port = free_port()
        server = self._start('redis', port, [
            binary,
            '--bind', '127.0.0.1',
            '--port', str(port),
            '--dir', str(self.directory),
            '--save', '',
            '--appendonly', 'no',
        ])  # fmt: skip
        wait_for(lambda: _redis_answers(port), what='redis-server')
        return server

    def uvicorn(self, name: str, app: str, *args: str, **environ: str) -> Server:
        """``uvicorn app`` on a free port; its own temp storage and environment."""
        port = free_port()
        storage = self.directory / f'{name}-{port}'
        env = dict(
            os.environ,
            ASGI_LOOK_STORAGE_PATH=str(storage),
            # NOTE: asgilook's own access log, as uvicorn's below.
            ASGI_LOOK_ACCESS_LOG='off',
            PYTHONPATH=str(ROOT),
            **environ,
        )
        # NOTE: No access log for any server: it would measure the log writer.
        command = [
            sys.executable, '-m', 'uvicorn', app,
            '--host', '127.0.0.1', '--port', str(port), '--no-access-log', *args,
        ]  # fmt: skip
        server = self._start(name, port, command, env)
        wait_for(lambda: _http_answers(server), what=f'uvicorn {app}')
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        self.started.remove(server)

    def _start(self, name, port, command, env=None):
        server = Server(name, command, port, env)
        self.started.append(server)
        self.every.append(server)
        return server


def _redis_answers(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(16).startswith(b'+PONG')
    except OSError:
        return False


def _http_answers(server):
    if server.process.poll() is not None:
        raise RuntimeError(f'{server.name} exited:\n{server.output()[-2000:]}')
    try:
        connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=2)
        connection.request('GET', '/')
        connection.getresponse().read()
        return True
    except OSError:
        return False
