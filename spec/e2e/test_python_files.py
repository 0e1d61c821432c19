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
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

from space_client import WAIT, ClientTestCase, new_room
from space_server import SLOW

BIG_WAIT = 30.0 * SLOW
MAX_BYTES = 10485760
PNG = bytes.fromhex("89504e470d0a1a0a")


def download(server, url_path, headers=None, method="GET", timeout=WAIT):
    """(status, headers as a lower-case dict, body bytes) of one request."""
    req = urllib.request.Request(server.url + url_path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class PythonFilesTest(ClientTestCase):
    def pair(self, transport):
        room = new_room("pyf-")
        a = self.client(transports=(transport,))
        b = self.client(transports=(transport,))
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
        # History (issue 14): new_file carries its offset, 16 lowercase hex digits.
        self.assertRegex(nf.pop("offset", ""), r"^[0-9a-f]{16}$", "%s: new_file.offset" % what)
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
