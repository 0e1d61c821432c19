#!/usr/bin/python3
"""space-server with the stock python-socketio client (Debian's python3-socketio), three ways:
the client's default transports (long-polling handshake, then at once the WebSocket probe and upgrade),
WebSocket only, and long-polling only. Every test runs in each configuration (one class each).

Run with Debian's interpreter:  /usr/bin/python3 spec/e2e/test_python_client.py
The binary comes from $SPACE_SERVER (default: build/space-server next to this repo's spec/),
the scripts from $SPACE_SCRIPTS (default: the repo's scripts/).
Every wait is bounded; nothing sleeps for synchronisation.
"""

import time
import unittest
import uuid

from space_client import WAIT, ClientTestCase, new_room
from space_server import SLOW

# Short heartbeats: python-engineio's polling write loop can exit before it
# sends the close packet of disconnect() (it re-checks its state after the
# previous POST), and the server then learns of the departure from the
# missed pong instead.
PING_INTERVAL_MS = 1000
PING_TIMEOUT_MS = int(2000 * SLOW)


class PythonClientTests:
    """The tests; a subclass (also a ClientTestCase) picks the client's transports."""

    TRANSPORTS = ("websocket",)  # None: the client's default
    ENDS_ON = "websocket"  # the transport the client must be on once connected
    SERVER_ARGS = ("--ping-interval", str(PING_INTERVAL_MS), "--ping-timeout", str(PING_TIMEOUT_MS))

    def client(self, name=None, transports=None):
        """A client on the class's transports (or on `transports`), checked to be on ENDS_ON."""
        if transports is not None:
            return super().client(name, transports)
        c = super().client(name, self.TRANSPORTS)
        self.assertEqual(c.sio.transport(), self.ENDS_ON,
                         "transport of a client connected with transports=%r: expected %r, got %r"
                         % (self.TRANSPORTS, self.ENDS_ON, c.sio.transport()))
        return c

    def assertError(self, err, code, event):
        self.assertIsInstance(err, dict, "error data must be an object, got %r" % (err,))
        self.assertEqual(err.get("code"), code, "error code: expected %r, got %r" % (code, err))
        self.assertIsInstance(err.get("message"), str, "error message must be a string: %r" % (err,))
        self.assertEqual(err.get("event"), event, "error event: expected %r, got %r" % (event, err))

    # -----------------------------------------------------------------------------------------

    def test_connect_gets_connected_event(self):
        t0 = time.time() * 1000
        a = self.client("alice_" + uuid.uuid4().hex[:6])
        t1 = time.time() * 1000
        c = a.connected
        self.assertIsInstance(c, dict, "connected data: %r" % (c,))
        self.assertEqual(c.get("sid"), a.sio.get_sid("/"), "connected.sid vs the client's socket id: %r" % (c,))
        self.assertEqual(c["user"]["name"], a.name, "connected.user.name: %r" % (c,))
        self.assertTrue(isinstance(c["user"]["id"], str) and c["user"]["id"], "connected.user.id: %r" % (c,))
        self.assertTrue(t0 - 2000 <= c["server_time"] <= t1 + 2000,
                        "server_time %r not within [%d, %d]" % (c["server_time"], t0, t1))

    def test_events_carry_one_argument_without_recovery_offsets(self):
        # The server appends a recovery offset to events for socket.io-client only: python-socketio
        # calls a handler with every argument, so `def on_new_message(data)` would break on two.
        a = self.client()
        b = self.client()
        room = new_room()
        a.request("join_room", {"room": room}, "joined_room")
        b.request("join_room", {"room": room}, "joined_room")
        a.next("user_joined_room")
        b.request("send_message", {"room": room, "text": "one argument"}, "message_sent")
        a.next("new_message")
        a.settle()
        self.assertEqual(a.arg_counts(), {name: {1} for name in a.arg_counts()},
                         "arguments per event at a python client: %r" % (a.arg_counts(),))

    def test_same_name_same_user(self):
        name = "bob_" + uuid.uuid4().hex[:6]
        b1 = self.client(name)
        b2 = self.client(name)
        self.assertEqual(b1.user["id"], b2.user["id"], "same name must be the same user id")
        self.assertNotEqual(b1.connected["sid"], b2.connected["sid"], "sids must differ")

    def test_join_and_user_joined_room(self):
        a = self.client()
        b = self.client()
        room = new_room()
        j = a.request("join_room", {"room": room}, "joined_room")
        self.assertEqual(j, {"room": room, "users": [a.user], "count": 1}, "joined_room of the first user")
        j2 = b.request("join_room", {"room": room}, "joined_room")
        self.assertEqual(sorted(u["id"] for u in j2["users"]), sorted([a.user["id"], b.user["id"]]),
                         "users in joined_room of the second user: %r" % (j2,))
        self.assertEqual(j2["count"], 2, "count: %r" % (j2,))
        self.assertEqual(a.next("user_joined_room"), {"room": room, "user": b.user}, "user_joined_room")

    def test_send_and_receive_between_two_python_clients(self):
        a = self.client()
        b = self.client()
        room = new_room()
        a.request("join_room", {"room": room}, "joined_room")
        b.request("join_room", {"room": room}, "joined_room")
        text = "  h\u00e9llo \U0001F600 \"quoted\"  "
        sent = a.request("send_message", {"room": room, "text": text, "client_msg_id": "py-1"}, "message_sent")
        self.assertEqual(sent["room"], room)
        self.assertEqual(sent["client_msg_id"], "py-1", "client_msg_id echoed: %r" % (sent,))
        got = b.next("new_message")
        # History (issue 14): new_message carries its offset, 16 lowercase hex digits.
        self.assertRegex(got.pop("offset", ""), r"^[0-9a-f]{16}$", "new_message.offset")
        self.assertEqual(got, {"id": sent["id"], "room": room, "user": a.user, "text": text.strip(),
                               "timestamp": sent["timestamp"]}, "new_message at the other client")
        reply = b.request("send_message", {"room": room, "text": "hi back"}, "message_sent")
        self.assertEqual(a.next("new_message")["id"], reply["id"], "the reply reaches the first client")
        a.settle()
        self.assertEqual(a.untaken("new_message"), [], "the sender must not get its own new_message")

    def test_ack_via_call(self):
        a = self.client()
        room = new_room()
        ack = a.sio.call("join_room", {"room": room}, timeout=WAIT)
        self.assertEqual(ack, {"room": room, "users": [a.user], "count": 1}, "ack of join_room")
        self.assertEqual(a.next("joined_room"), ack, "joined_room event vs ack")
        ack2 = a.sio.call("send_message", {"room": room, "text": "x", "client_msg_id": "k"}, timeout=WAIT)
        self.assertEqual(a.next("message_sent"), ack2, "message_sent event vs ack")
        ack3 = a.sio.call("get_room_users", {"room": room}, timeout=WAIT)
        self.assertEqual(ack3, {"room": room, "users": [a.user], "count": 1}, "ack of get_room_users")

    def test_errors(self):
        a = self.client()
        room = new_room()

        def refused(event, data, code):
            ack = a.sio.call(event, data, timeout=WAIT)
            self.assertError(ack, code, event)
            self.assertEqual(a.next("error"), ack, "the error event is sent as well as the ack")

        refused("join_room", {"room": "bad room"}, "invalid_room")
        refused("join_room", {"nope": 1}, "invalid_payload")
        refused("join_room", "lobby", "invalid_payload")
        refused("send_message", {"room": room, "text": "x"}, "not_in_room")
        refused("leave_room", {"room": room}, "not_in_room")
        refused("bogus_event", {}, "unknown_event")
        a.request("join_room", {"room": room}, "joined_room")
        refused("send_message", {"room": room, "text": " \n "}, "empty_message")
        refused("send_message", {"room": room, "text": "\u00e9" * 4001}, "message_too_long")
        ok = a.sio.call("send_message", {"room": room, "text": "\u00e9" * 4000}, timeout=WAIT)
        self.assertIsInstance(ok.get("id"), str, "4000 code points must be accepted: %r" % (ok,))

    def test_leave_room(self):
        a = self.client()
        b = self.client()
        room = new_room()
        a.request("join_room", {"room": room}, "joined_room")
        b.request("join_room", {"room": room}, "joined_room")
        self.assertEqual(b.request("leave_room", {"room": room}, "left_room"), {"room": room})
        self.assertEqual(a.next("user_left_room"), {"room": room, "user": b.user}, "user_left_room")

    def test_disconnect_cleanup(self):
        name = "carol_" + uuid.uuid4().hex[:6]
        c1 = self.client(name)
        c2 = self.client(name)
        d = self.client()
        room = new_room()
        side = new_room()  # only c1 is here: it empties when the server has handled c1's disconnect
        for c in (c1, c2, d):
            c.request("join_room", {"room": room}, "joined_room")
        c1.request("join_room", {"room": side}, "joined_room")
        c1.sio.disconnect()
        self.assertTrue(c1.disconnected.wait(WAIT), "c1 disconnect")
        # By the close packet at once, or by the missed pong (see PING_INTERVAL_MS).
        limit = WAIT + (PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000.0
        deadline = time.monotonic() + limit
        while d.request("get_room_users", {"room": side}, "room_users")["count"] != 0:
            self.assertLess(time.monotonic(), deadline, "the server did not drop c1 from its rooms within %.1f s" % limit)
            time.sleep(0.02)  # polling interval of a bounded wait
        d.settle()
        self.assertEqual(d.untaken("user_left_room"), [], "carol still has c2 in the room: nobody is told")
        users = d.request("get_room_users", {"room": room}, "room_users")
        self.assertEqual(users["count"], 2, "count while carol keeps one connection: %r" % (users,))
        self.assertEqual(sorted(u["id"] for u in users["users"]), sorted([c2.user["id"], d.user["id"]]),
                         "carol listed once: %r" % (users,))
        c2.sio.disconnect()
        self.assertEqual(d.next("user_left_room"), {"room": room, "user": c2.user},
                         "user_left_room after carol's last connection")
        users = d.request("get_room_users", {"room": room}, "room_users")
        self.assertEqual(users, {"room": room, "users": [d.user], "count": 1}, "room_users after carol left")
        self.assertEqual(d.untaken("user_left_room"), [], "exactly one user_left_room for carol")

    def test_burst_of_messages_arrives_complete_in_acceptance_order(self):
        # 35 messages sent at once by a WebSocket client: over polling they queue up for one GET
        # (more than python-engineio's 16-packet limit per payload) and must all arrive, in order.
        receiver = self.client()
        sender = self.client(transports=("websocket",))
        room = new_room()
        receiver.request("join_room", {"room": room}, "joined_room")
        sender.request("join_room", {"room": room}, "joined_room")
        n = 35
        for i in range(n):
            sender.sio.emit("send_message", {"room": room, "text": "burst %d" % i})
        got = [receiver.next("new_message", timeout=WAIT * 2) for _ in range(n)]
        # python-engineio 4.3 runs each message's handler in a thread of its own, so the
        # order handlers run in is the client's, not the wire's: check completeness, and the
        # order through the server's ids, which sort in the order messages were accepted.
        by_id = [m["text"] for m in sorted(got, key=lambda m: m["id"])]
        self.assertEqual(by_id, ["burst %d" % i for i in range(n)], "texts received, in acceptance order")
        self.assertFalse(receiver.disconnected.is_set(), "the receiver must stay connected")
        receiver.settle()

    def test_transport_in_use(self):
        a = self.client()
        self.assertEqual(a.sio.transport(), self.ENDS_ON, "transport after connecting")
        room = new_room()
        a.request("join_room", {"room": room}, "joined_room")
        a.settle()
        self.assertEqual(a.sio.transport(), self.ENDS_ON, "transport after a few round trips")


class PythonDefaultTransportsTest(PythonClientTests, ClientTestCase):
    """socketio.Client() defaults: polling handshake, WebSocket probe right away, upgrade."""

    TRANSPORTS = None
    ENDS_ON = "websocket"


class PythonWebSocketTest(PythonClientTests, ClientTestCase):
    TRANSPORTS = ("websocket",)
    ENDS_ON = "websocket"


class PythonPollingTest(PythonClientTests, ClientTestCase):
    TRANSPORTS = ("polling",)
    ENDS_ON = "polling"


if __name__ == "__main__":
    unittest.main(verbosity=2)
