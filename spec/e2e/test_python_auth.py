#!/usr/bin/python3
"""PROTOCOL.md §2 (authentication) with the stock python-socketio client (Debian's python3-socketio)
and tokens made with PyJWT (Debian's python3-jwt): an accepted HS256 token (WebSocket and
long-polling; auth object, Authorization header, token query) and an accepted ES256 token, and the
refusals with their codes: a refused connect raises socketio.exceptions.ConnectionError and the
client's connect_error handler gets {"message": "unauthorized", "data": {"code": ...}}.

Run with Debian's interpreter:  /usr/bin/python3 spec/e2e/test_python_auth.py
The binary comes from $SPACE_SERVER (default: build/space-server), the scripts from $SPACE_SCRIPTS.
Keys are made here and written to a temp dir removed at the end. Every wait is bounded.
"""

import os
import secrets
import shutil
import tempfile
import threading
import time
import unittest
import uuid
import warnings

import jwt
import socketio

from space_server import SLOW, ServerProcess

WAIT = 3.0 * SLOW


class Attempt:
    """One python-socketio client connecting with the given auth/headers/query; records every event,
    the connect_error data and the disconnect."""

    def __init__(self, server, auth=None, headers=None, query="", transports=("websocket",), wait_timeout=5.0):
        self.sio = socketio.Client(reconnection=False)
        self.events = []
        self.cond = threading.Condition()
        self.connect_errors = []
        self.error = None

        @self.sio.on("*")
        def _any(event, *args):
            self._push(event, args[0] if args else None)

        @self.sio.event
        def connect_error(data):
            self.connect_errors.append(data)

        try:
            self.sio.connect(server.url + (("?" + query) if query else ""), auth=auth, headers=headers or {},
                             transports=list(transports), wait_timeout=wait_timeout * SLOW)
        except socketio.exceptions.ConnectionError as e:
            self.error = e

    def _push(self, event, data):
        with self.cond:
            self.events.append([event, data, False])
            self.cond.notify_all()

    def next(self, event, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.events:
                    if not item[2] and item[0] == event:
                        item[2] = True
                        return item[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r within %.1f s; received: %r" % (event, timeout, self.events[-10:]))
                self.cond.wait(left)

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass


def now():
    return int(time.time())


class PythonAuthTest(unittest.TestCase):
    server = None
    tmp = None

    @classmethod
    def setUpClass(cls):
        warnings.simplefilter("ignore", ResourceWarning)
        cls.tmp = tempfile.mkdtemp(prefix="space-pyauth-")
        cls.secret = secrets.token_hex(32)
        secret_file = os.path.join(cls.tmp, "jwt.secret")
        with open(secret_file, "w") as f:
            f.write(cls.secret + "\n")
        cls.server = ServerProcess(["--jwt-secret-file", secret_file])
        cls.es_server = None
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec
        except ImportError:  # PyJWT without cryptography: no ES256 here
            return
        cls.ec_key = ec.generate_private_key(ec.SECP256R1())
        pem = cls.ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        pem_file = os.path.join(cls.tmp, "ec.pub.pem")
        with open(pem_file, "wb") as f:
            f.write(pem)
        cls.es_server = ServerProcess(["--jwt-public-key", pem_file])

    @classmethod
    def tearDownClass(cls):
        codes = [(s, s.stop()) for s in (cls.server, cls.es_server) if s is not None]
        shutil.rmtree(cls.tmp, ignore_errors=True)
        for s, code in codes:
            if code != 0:
                raise AssertionError("expected the server to exit 0 after SIGTERM, got %r\n%s" % (code, s.stderr_tail()))

    def setUp(self):
        self.attempts = []

    def tearDown(self):
        for a in self.attempts:
            a.close()
        for s in (self.server, self.es_server):
            if s is not None:
                self.assertIsNone(s.proc.poll(), "the server died\n%s" % s.stderr_tail())

    def token(self, claims=None, key=None, alg="HS256", **extra):
        payload = {"sub": "py-" + uuid.uuid4().hex[:10], "exp": now() + 600}
        payload.update(claims or {})
        payload.update(extra)
        return payload, jwt.encode(payload, key if key is not None else self.secret, algorithm=alg)

    def attempt(self, server=None, refused=False, **kw):
        """refused=True: python-socketio 5.7 waits out wait_timeout after a connect_error before it
        raises ConnectionError, so an attempt expected to fail gets a short one (1 s)."""
        a = Attempt(server or self.server, wait_timeout=1.0 if refused else 5.0, **kw)
        self.attempts.append(a)
        return a

    def assertAccepted(self, a, sub, name=None):
        self.assertIsNone(a.error, "expected the connection to be accepted; connect_error %r" % (a.connect_errors,))
        connected = a.next("connected")
        self.assertEqual(connected["user"], {"id": sub, "name": name or sub}, "connected.user: %r" % (connected,))
        self.assertEqual(connected["sid"], a.sio.get_sid("/"))
        return connected

    def assertRefused(self, a, code):
        self.assertIsInstance(a.error, socketio.exceptions.ConnectionError,
                              "expected ConnectionError, got %r (events %r)" % (a.error, a.events))
        self.assertEqual(a.connect_errors, [{"message": "unauthorized", "data": {"code": code}}],
                         "the connect_error data")
        self.assertFalse(a.sio.connected)
        self.assertEqual([e for e in a.events if e[0] == "connected"], [], "no connected event after a refusal")

    # -----------------------------------------------------------------------------------------

    def test_accepted_hs256_auth_object_websocket(self):
        claims, tok = self.token(name="Py Alice")
        a = self.attempt(auth={"token": tok})
        self.assertAccepted(a, claims["sub"], "Py Alice")
        self.assertEqual(a.sio.transport(), "websocket")

    def test_accepted_hs256_long_polling(self):
        claims, tok = self.token(preferred_username="py_poller")
        a = self.attempt(auth={"token": tok}, transports=("polling",))
        self.assertAccepted(a, claims["sub"], "py_poller")
        self.assertEqual(a.sio.transport(), "polling")

    def test_accepted_authorization_header_and_query(self):
        claims, tok = self.token()
        self.assertAccepted(self.attempt(headers={"Authorization": "Bearer " + tok}), claims["sub"])
        claims2, tok2 = self.token()
        self.assertAccepted(self.attempt(query="token=" + tok2), claims2["sub"])

    def test_accepted_es256(self):
        if self.es_server is None:
            self.skipTest("python3-cryptography is not installed")
        claims, tok = self.token(key=self.ec_key, alg="ES256")
        self.assertAccepted(self.attempt(server=self.es_server, auth={"token": tok}), claims["sub"])
        _, hs = self.token(key=self.secret, alg="HS256")
        self.assertRefused(self.attempt(refused=True, server=self.es_server, auth={"token": hs}), "invalid_token")

    def test_refused_expired(self):
        _, tok = self.token(exp=now() - 3600)
        self.assertRefused(self.attempt(refused=True, auth={"token": tok}), "token_expired")
        self.assertRefused(self.attempt(refused=True, auth={"token": tok}, transports=("polling",)), "token_expired")

    def test_refused_bad_signature(self):
        _, tok = self.token(key=secrets.token_hex(32))
        self.assertRefused(self.attempt(refused=True, auth={"token": tok}), "invalid_token")
        _, good = self.token()
        head, body, sig = good.split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        self.assertRefused(self.attempt(refused=True, auth={"token": ".".join((head, body, flipped))}), "invalid_token")

    def test_refused_missing(self):
        self.assertRefused(self.attempt(refused=True), "missing_token")
        self.assertRefused(self.attempt(refused=True, auth={"name": "no-token"}), "missing_token")

    def test_refused_not_yet_valid_and_alg_none(self):
        _, tok = self.token(nbf=now() + 3600)
        self.assertRefused(self.attempt(refused=True, auth={"token": tok}), "token_not_yet_valid")
        _, none = self.token(key="", alg="none")
        self.assertRefused(self.attempt(refused=True, auth={"token": none}), "invalid_token")

    def test_refresh_token(self):
        claims, tok = self.token()
        a = self.attempt(auth={"token": tok})
        self.assertAccepted(a, claims["sub"])
        fresh_claims, fresh = self.token(sub=claims["sub"], exp=now() + 7200)
        a.sio.emit("refresh_token", {"token": fresh})
        self.assertEqual(a.next("token_refreshed"), {"exp": fresh_claims["exp"] * 1000})
        _, other = self.token()
        a.sio.emit("refresh_token", {"token": other})
        err = a.next("error")
        self.assertEqual((err.get("code"), err.get("event")), ("invalid_token", "refresh_token"), "%r" % (err,))


if __name__ == "__main__":
    unittest.main(verbosity=2)
