#!/usr/bin/python3
"""examples/chat/chat.py driven through pipes against the real server: two terminals, alice (dev
mode, --name) and bob (--download DIR); each prints the other's message and its own; alice sends a
file with /file PATH, bob sees it and saves identical bytes; with a JWT server, --token alone (no
--name) logs in; --url reaches another port. At the end of piped input the client waits for its
answers and exits 0.

Run with Debian's interpreter:  /usr/bin/python3 spec/e2e/test_python_chat_cli.py
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from space_server import REPO, SLOW, ServerProcess

CHAT = os.path.join(REPO, "examples", "chat", "chat.py")
WAIT = 10.0 * SLOW
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(range(256)) * 8


class Terminal:
    """chat.py with its stdin a pipe and its stdout read line by line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(["/usr/bin/python3", CHAT, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = []
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def type(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pred, what):
        """The first line (seen or coming) for which pred holds."""
        for line in self.lines:
            if pred(line):
                return line
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if pred(line):
                return line
        raise AssertionError("no line %s; got:\n%s\nstderr: %s" % (what, "\n".join(self.lines), self.stderr_so_far()))

    def stderr_so_far(self):
        return "" if self.proc.poll() is None else self.proc.stderr.read()

    def close(self):
        """End of input: the client waits for its answers and exits."""
        self.proc.stdin.close()
        code = self.proc.wait(WAIT)
        while True:
            line = self.q.get(timeout=WAIT)
            if line is None:
                break
            self.lines.append(line)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class ChatCliTest(unittest.TestCase):
    def setUp(self):
        self.server = ServerProcess()
        self.url = self.server.url
        self.terms = []
        self.tmp = tempfile.mkdtemp(prefix="space-chat-cli-")

    def tearDown(self):
        for t in self.terms:
            t.kill()
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def term(self, *args):
        t = Terminal(*args)
        self.terms.append(t)
        return t

    def test_two_terminals_chat_and_send_a_file(self):
        room = "cli-" + uuid.uuid4().hex[:8]
        alice_name, bob_name = "alice" + uuid.uuid4().hex[:4], "bob" + uuid.uuid4().hex[:4]
        downloads = os.path.join(self.tmp, "bob-files")
        os.mkdir(downloads)
        alice = self.term("--url", self.url, "--name", alice_name, "--room", room)
        alice.expect(lambda l: l.startswith("* joined " + room), "alice joined")
        bob = self.term("--url", self.url, "--name", bob_name, "--room", room, "--download", downloads)
        bob.expect(lambda l: l.startswith("* joined " + room), "bob joined")
        alice.expect(lambda l: l == "* %s joined %s" % (bob_name, room), "alice sees bob join")

        alice.type("hello bob")
        alice.expect(lambda l: l == "[%s] %s: hello bob" % (room, alice_name), "alice sees her own message")
        bob.expect(lambda l: l == "[%s] %s: hello bob" % (room, alice_name), "bob sees alice's message")
        bob.type("hi alice")
        bob.expect(lambda l: l == "[%s] %s: hi alice" % (room, bob_name), "bob sees his own message")
        alice.expect(lambda l: l == "[%s] %s: hi alice" % (room, bob_name), "alice sees bob's message")

        path = os.path.join(self.tmp, "pic.png")
        with open(path, "wb") as f:
            f.write(PNG)
        alice.type("/file " + path)
        line = alice.expect(lambda l: "you sent pic.png" in l, "alice's file_sent")
        self.assertIn("(%d bytes, image/png): %s/files/" % (len(PNG), self.url), line)
        bob.expect(lambda l: "%s sent pic.png: saved to" % alice_name in l, "bob saved the file")
        with open(os.path.join(downloads, "pic.png"), "rb") as f:
            self.assertEqual(f.read(), PNG)

        alice.type("/file " + os.path.join(self.tmp, "missing.png"))
        alice.expect(lambda l: l.startswith("! cannot read"), "a missing file is reported")
        alice.type("last words")
        self.assertEqual(alice.close(), 0)
        self.assertIn("[%s] %s: last words" % (room, alice_name), alice.lines,
                      "piped input: the answer to the last line is awaited before exit")
        self.assertEqual(bob.close(), 0)

    def test_token_without_name(self):
        secret = os.urandom(32).hex()
        key = os.path.join(self.tmp, "jwt.secret")
        with open(key, "w") as f:
            f.write(secret)
        jwt_server = ServerProcess(["--jwt-secret-file", key])
        try:
            def b64(b):
                return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
            head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
            body = b64(json.dumps({"sub": "u-cli", "name": "Carol", "exp": int(time.time()) + 600}).encode())
            sig = b64(hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest())
            carol = self.term("--url", jwt_server.url, "--token", "%s.%s.%s" % (head, body, sig))
            carol.expect(lambda l: l == "* connected as Carol (u-cli)", "carol connected by token")
            carol.expect(lambda l: l.startswith("* joined lobby"), "carol joined the default room")
            self.assertEqual(carol.close(), 0)
        finally:
            jwt_server.stop()
        none = subprocess.run(["/usr/bin/python3", CHAT, "--url", self.url], capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(none.returncode, 2)
        self.assertIn("--name", none.stderr)


if __name__ == "__main__":
    unittest.main()
