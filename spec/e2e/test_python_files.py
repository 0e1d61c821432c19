#!/usr/bin/python3
"""send_file through the stock python-socketio client (Debian's python3-socketio), over WebSocket and
over HTTP long-polling: bytes (a Socket.IO binary attachment) and base64 text, file_sent (event and
ack), new_file at the other member, and the download (urllib) returning identical bytes.

Run with Debian's interpreter:  /usr/bin/python3 spec/e2e/test_python_files.py
The binary comes from $SPACE_SERVER (default: build/space-server next to this repo's spec/), the
scripts from $SPACE_SCRIPTS (default: the repo's scripts/). The server gets a fresh --files-dir.
Every wait is bounded; nothing sleeps for synchronisation.
"""

import base64
import hashlib
import os
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import socketio

from space_server import SLOW, ServerProcess

WAIT = 3.0 * SLOW
BIG_WAIT = 30.0 * SLOW
MAX_BYTES = 10485760
PNG = bytes.fromhex("89504e470d0a1a0a")


class Client:
    """A python-socketio client on one transport that records every event it receives."""

    def __init__(self, server, transport):
        self.name = "py_" + uuid.uuid4().hex[:8]
        self.sio = socketio.Client(reconnection=False)
        self.events = []  # [name, data, taken]
        self.cond = threading.Condition()

        @self.sio.on("*")
        def _any(event, *args):
            with self.cond:
                self.events.append([event, args[0] if args else None, False])
                self.cond.notify_all()

        self.sio.connect(server.url, auth={"name": self.name}, transports=[transport], wait_timeout=5)
        self.connected = self.next("connected")

    @property
    def user(self):
        return self.connected["user"]

    def next(self, event, pred=None, timeout=WAIT):
        """The next not yet taken event of that name (or one of a tuple of names: returns (name, data))."""
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

    def request(self, event, data, answer):
        self.sio.emit(event, data)
        name, got = self.next((answer, "error"))
        if name != answer:
            raise AssertionError("%s: %s: expected %r, got %s %r" % (self.name, event, answer, name, got))
        return got

    def settle(self):
        room = "settle-" + uuid.uuid4().hex[:8]
        self.sio.emit("get_room_users", {"room": room})
        self.next("room_users", pred=lambda d: isinstance(d, dict) and d.get("room") == room)

    def untaken(self, event):
        with self.cond:
            return [e[1] for e in self.events if e[0] == event and not e[2]]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def short(v):
    if isinstance(v, (bytes, bytearray)):
        return "<%d bytes>" % len(v)
    if isinstance(v, str) and len(v) > 80:
        return "<%d chars>" % len(v)
    if isinstance(v, dict):
        return {k: short(x) for k, x in v.items()}
    return v


def download(server, url_path, headers=None, method="GET", timeout=WAIT):
    """(status, headers as a lower-case dict, body bytes) of one request."""
    req = urllib.request.Request(server.url + url_path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class PythonFilesTest(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError("expected the server to exit 0 after SIGTERM, got %r\n%s"
                                 % (code, cls.server.stderr_tail()))

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.assertIsNone(self.server.proc.poll(), "the server died during the test\n%s" % self.server.stderr_tail())

    def pair(self, transport):
        room = "pyf-" + uuid.uuid4().hex[:12]
        a = Client(self.server, transport)
        self.clients.append(a)
        b = Client(self.server, transport)
        self.clients.append(b)
        a.request("join_room", {"room": room}, "joined_room")
        b.request("join_room", {"room": room}, "joined_room")
        return room, a, b

    def send(self, client, data, timeout=WAIT):
        """send_file with an ack: returns (ack, (event name, event data))."""
        ack = client.sio.call("send_file", data, timeout=timeout)
        ev = client.next(("file_sent", "error"), timeout=timeout)
        return ack, ev

    def check_sent(self, client, other, data, content, what, timeout=WAIT):
        ack, (name, f) = self.send(client, data, timeout)
        self.assertEqual(name, "file_sent", "%s: expected file_sent, got %s %r" % (what, name, f))
        self.assertEqual(ack, f, "%s: the ack equals the file_sent event" % what)
        self.assertEqual(sorted(f), ["id", "name", "room", "size", "type", "url"], "%s: file_sent keys %r" % (what, f))
        self.assertRegex(f["id"], r"^[0-9a-f]{32}$", what)
        self.assertEqual((f["room"], f["name"], f["type"], f["size"]),
                         (data["room"], data["name"], data["type"], len(content)), "%s: file_sent fields" % what)
        prefix = "/files/%s/" % f["id"]
        self.assertTrue(f["url"].startswith(prefix), "%s: url %r" % (what, f["url"]))
        self.assertEqual(urllib.parse.unquote(f["url"][len(prefix):]), data["name"], "%s: the name in the url" % what)
        nf = other.next("new_file", pred=lambda d: d.get("id") == f["id"], timeout=timeout)
        self.assertEqual(nf, {"id": f["id"], "room": data["room"], "user": client.user, "name": data["name"],
                              "type": data["type"], "size": len(content), "url": f["url"]}, "%s: new_file" % what)
        client.settle()
        self.assertEqual(client.untaken("new_file"), [], "%s: the sender gets no new_file" % what)
        return f

    def check_download(self, f, content, what):
        status, headers, body = download(self.server, f["url"], timeout=BIG_WAIT)
        self.assertEqual(status, 200, "%s: GET %s" % (what, f["url"]))
        self.assertEqual(len(body), len(content), "%s: downloaded length" % what)
        self.assertTrue(body == content, "%s: downloaded bytes differ (sha256 %s, sent %s)"
                        % (what, hashlib.sha256(body).hexdigest(), hashlib.sha256(content).hexdigest()))
        ctype = f["type"] + ("; charset=utf-8" if f["type"] == "text/plain" else "")
        self.assertEqual(headers.get("content-type"), ctype, "%s: Content-Type" % what)
        self.assertEqual(headers.get("content-length"), str(len(content)), "%s: Content-Length" % what)
        self.assertEqual(headers.get("etag"), '"%s"' % hashlib.sha256(content).hexdigest(), "%s: ETag" % what)
        self.assertEqual(headers.get("x-content-type-options"), "nosniff", "%s: nosniff" % what)
        return headers

    def run_encodings(self, transport):
        room, a, b = self.pair(transport)
        png = PNG + os.urandom(3000)
        f1 = self.check_sent(a, b, {"room": room, "name": "py bytes \u00e9.png", "type": "image/png", "data": png},
                             png, "%s bytes" % transport)
        self.check_download(f1, png, "%s bytes" % transport)
        text = ("h\u00e9llo from python \U0001F600 " + uuid.uuid4().hex + "\n").encode("utf-8")
        f2 = self.check_sent(a, b, {"room": room, "name": "notes.txt", "type": "text/plain",
                                    "data": base64.b64encode(text).decode("ascii")}, text, "%s base64" % transport)
        self.check_download(f2, text, "%s base64" % transport)
        pdf = b"%PDF-1.7\n" + os.urandom(5000)
        f3 = self.check_sent(b, a, {"room": room, "name": "doc.pdf", "type": "application/pdf", "data": pdf},
                             pdf, "%s bytes from the other side" % transport)
        headers = self.check_download(f3, pdf, "%s pdf" % transport)
        self.assertTrue(headers.get("content-disposition", "").startswith("attachment"),
                        "pdf is an attachment: %r" % headers.get("content-disposition"))
        # A refusal answers the ack and the error event alike.
        ack, (name, err) = self.send(a, {"room": room, "name": "x.png", "type": "image/png", "data": "not base64!"})
        self.assertEqual(name, "error")
        self.assertEqual(err.get("code"), "invalid_file", "invalid base64: %r" % (err,))
        self.assertEqual(err.get("event"), "send_file", "invalid base64: %r" % (err,))
        self.assertEqual(ack, err, "the ack equals the error event")
        ack, (name, err) = self.send(a, {"room": room, "name": "x.png", "type": "image/png", "data": b"GIF89a...."})
        self.assertEqual((name, err.get("code")), ("error", "file_type_not_allowed"), "bytes not matching the type: %r" % (err,))

    def test_websocket_bytes_and_base64(self):
        self.run_encodings("websocket")

    def test_polling_bytes_and_base64(self):
        self.run_encodings("polling")

    def test_websocket_10_mib_bytes_accepted_and_one_more_refused(self):
        room, a, b = self.pair("websocket")
        big = PNG + os.urandom(MAX_BYTES - len(PNG))
        f = self.check_sent(a, b, {"room": room, "name": "big.png", "type": "image/png", "data": big}, big,
                            "10 MiB bytes", timeout=BIG_WAIT)
        self.check_download(f, big, "10 MiB bytes")
        ack, (name, err) = self.send(a, {"room": room, "name": "over.png", "type": "image/png", "data": big + b"!"},
                                     timeout=BIG_WAIT)
        self.assertEqual((name, err.get("code"), err.get("event")), ("error", "file_too_large", "send_file"),
                         "10 MiB + 1 byte: %r" % (err,))
        self.assertEqual(ack, err, "the ack equals the error event")


if __name__ == "__main__":
    unittest.main(verbosity=2)
