"""The real space-server for the python-socketio tests: started on a free
loopback port with a fresh --files-dir, its stderr kept for failure
messages, stopped with SIGTERM. Shared by spec/e2e/test_python_*.py."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVER = os.environ.get("SPACE_SERVER") or os.path.join(REPO, "build", "space-server")
SCRIPTS = os.environ.get("SPACE_SCRIPTS") or os.path.join(REPO, "scripts")
SLOW = max(1.0, float(os.environ.get("SPACE_TEST_SLOW", "1")))
LISTEN_RE = re.compile(r"listening address=[^ :]+:(\d+)")


class ServerProcess:
    """The server on a free loopback port; stderr is kept for failure messages."""

    def __init__(self, extra_args=(), scripts=None):
        self.args = [SERVER, "--scripts", scripts or SCRIPTS, "--host", "127.0.0.1", "--port", "0", *extra_args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPACE_")}
        self.files_dir = tempfile.mkdtemp(prefix="space-files-")
        env["SPACE_FILES_DIR"] = self.files_dir
        self.data_dir = tempfile.mkdtemp(prefix="space-data-")  # the history database: never ./data
        env["SPACE_DATA_DIR"] = self.data_dir
        self.stderr_lines = []
        self.port = None
        self._port_found = threading.Event()
        if not os.path.exists(SERVER):
            raise RuntimeError("server binary not found at %s (set SPACE_SERVER)" % SERVER)
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._port_found.wait(10 * SLOW) or self.port is None:
            self.proc.kill()
            self.proc.wait(5)
            raise RuntimeError("server did not print 'listening address=HOST:PORT' (exit %s)\n%s"
                               % (self.proc.returncode, self.stderr_tail()))

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.stderr_lines.append(line)
            if self.port is None:
                m = LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self._port_found.set()
        self._port_found.set()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stderr_tail(self, n=40):
        return "".join(self.stderr_lines[-n:])

    def stop(self, timeout=5.0):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        try:
            if self.proc.poll() is not None:
                return self.proc.returncode
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        finally:
            shutil.rmtree(self.files_dir, ignore_errors=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)


def stop_servers(*servers):
    """Stops every server given (None is skipped), then fails naming any that did not exit 0 after
    SIGTERM: for tearDownClass."""
    codes = [(s, s.stop()) for s in servers if s is not None]
    for s, code in codes:
        if code != 0:
            raise AssertionError("expected the server to exit 0 after SIGTERM, got %r\n%s" % (code, s.stderr_tail()))
