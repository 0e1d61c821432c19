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
import time
import unittest
import uuid

import jwt
import socketio

from space_client import ClientTestCase
from space_server import ServerProcess, stop_servers


def now():
    return int(time.time())


class PythonAuthTest(ClientTestCase):
    tmp = None
    es_server = None

    @classmethod
    def setUpClass(cls):
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
        try:
            stop_servers(cls.server, cls.es_server)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        super().tearDown()
        if self.es_server is not None:
            self.assertIsNone(self.es_server.proc.poll(), "the ES256 server died\n%s" % self.es_server.stderr_tail())

    def token(self, claims=None, key=None, alg="HS256", **extra):
        payload = {"sub": "py-" + uuid.uuid4().hex[:10], "exp": now() + 600}
        payload.update(claims or {})
        payload.update(extra)
        return payload, jwt.encode(payload, key if key is not None else self.secret, algorithm=alg)

    def attempt(self, server=None, refused=False, **kw):
        """refused=True: python-socketio 5.7 waits out wait_timeout after a connect_error before it
        raises ConnectionError, so an attempt expected to fail gets a short one (1 s)."""
        kw.setdefault("auth", None)
        return self.client(server=server, attempt=True, wait_timeout=1.0 if refused else 5.0, **kw)

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
