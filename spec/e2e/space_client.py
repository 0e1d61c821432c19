"""The one python-socketio client of spec/e2e/test_python_*.py: it records every event it
receives (taken at most once each by next()), a refused connect's connect_error data and the
disconnect. Every wait is bounded."""

import threading
import time
import unittest
import uuid
import warnings

import socketio

from space_server import SLOW, ServerProcess, stop_servers

WAIT = 3.0 * SLOW
BY_NAME = object()  # auth default: {"name": <the client's name>}


def short(v):
    """v for a failure message, with long bytes and strings (file payloads) cut to their size."""
    if isinstance(v, (bytes, bytearray)):
        return "<%d bytes>" % len(v)
    if isinstance(v, str) and len(v) > 80:
        return "<%d chars>" % len(v)
    if isinstance(v, dict):
        return {k: short(x) for k, x in v.items()}
    return v


def new_room(prefix="py-"):
    return prefix + uuid.uuid4().hex[:12]


class Client:
    """A python-socketio client connected to `server` (a ServerProcess).

    transports: a tuple for socketio.Client.connect, or None for the client's default.
    auth: the CONNECT payload; BY_NAME sends {"name": name}, None sends none.
    attempt=False: a refused connect raises, and the "connected" event is taken into .connected.
    attempt=True: a refused connect is kept in .error (socketio.exceptions.ConnectionError) and
    .connect_errors, and "connected" is left for the test to take."""

    def __init__(self, server, name=None, transports=("websocket",), auth=BY_NAME, headers=None, query="",
                 wait_timeout=5.0, attempt=False):
        # python-engineio leaves its requests.Session's keep-alive sockets to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        self.name = name or ("py_" + uuid.uuid4().hex[:8])
        self.sio = socketio.Client(reconnection=False)
        self.events = []  # [name, data, taken]
        self.cond = threading.Condition()
        self.disconnected = threading.Event()
        self.connect_errors = []
        self.error = None
        self.connected = None

        @self.sio.on("*")
        def _any(event, *args):
            with self.cond:
                self.events.append([event, args[0] if args else None, False, len(args)])
                self.cond.notify_all()

        @self.sio.event
        def connect_error(data):
            self.connect_errors.append(data)

        @self.sio.event
        def disconnect():
            self.disconnected.set()

        try:
            self.sio.connect(server.url + (("?" + query) if query else ""),
                             auth={"name": self.name} if auth is BY_NAME else auth, headers=headers or {},
                             transports=list(transports) if transports is not None else None,
                             wait_timeout=wait_timeout * SLOW)
        except socketio.exceptions.ConnectionError as e:
            if not attempt:
                raise
            self.error = e
        if not attempt:
            self.connected = self.next("connected")

    def next(self, event, pred=None, timeout=WAIT):
        """The next not yet taken event `event` (or one of a tuple of names); returns (name, data) for tuples."""
        names = event if isinstance(event, tuple) else (event,)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.events:
                    if not item[2] and item[0] in names and (pred is None or pred(item[1])):
                        item[2] = True
                        return (item[0], item[1]) if isinstance(event, tuple) else item[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: no %r within %.1f s; received: %r"
                                         % (self.name, event, timeout,
                                            [(e[0], short(e[1])) for e in self.events][-15:]))
                self.cond.wait(left)

    def arg_counts(self):
        """{event name: set of argument counts} of every event received so far."""
        with self.cond:
            counts = {}
            for e in self.events:
                counts.setdefault(e[0], set()).add(e[3])
            return counts

    def untaken(self, event):
        with self.cond:
            return [e[1] for e in self.events if e[0] == event and not e[2]]

    def request(self, event, data, answer):
        """Emits and waits for `answer`; an error event instead fails."""
        self.sio.emit(event, data)
        name, got = self.next((answer, "error"))
        if name != answer:
            raise AssertionError("%s: %s %r: expected %r, got %s %r"
                                 % (self.name, event, short(data), answer, name, got))
        return got

    def settle(self):
        """Round trip: once answered, anything the server sent before has arrived."""
        room = "settle-" + uuid.uuid4().hex[:8]
        self.sio.emit("get_room_users", {"room": room})
        self.next("room_users", pred=lambda d: isinstance(d, dict) and d.get("room") == room)

    @property
    def user(self):
        return self.connected["user"]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - best effort cleanup, it may be gone already
            pass


class ClientTestCase(unittest.TestCase):
    """One server per class (started with SERVER_ARGS; it must exit 0 on SIGTERM at the end); the
    clients a test opened with client() are closed after it, and the server must still run."""

    SERVER_ARGS = ()
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(list(cls.SERVER_ARGS))

    @classmethod
    def tearDownClass(cls):
        stop_servers(cls.server)

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.assertIsNone(self.server.proc.poll(), "the server died during the test\n%s" % self.server.stderr_tail())

    def client(self, name=None, transports=("websocket",), server=None, **kw):
        """A Client (see its arguments) closed at the end of the test."""
        c = Client(server or self.server, name, transports, **kw)
        self.clients.append(c)
        return c
