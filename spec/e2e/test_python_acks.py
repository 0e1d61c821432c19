#!/usr/bin/python3
"""python-socketio's call() (an event with an acknowledgement) against handlers that return
nothing (the ack comes, with no data: call() returns None) and that keep the event to answer it
later (call() returns the later answer). Scripts: spec/e2e/scripts_acks.

Run with Debian's interpreter:  /usr/bin/python3 spec/e2e/test_python_acks.py
"""

import os
import unittest

import socketio

from space_server import SLOW, ServerProcess, stop_servers

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts_acks")
WAIT = 3 * SLOW


class PythonAckTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(scripts=SCRIPTS)

    @classmethod
    def tearDownClass(cls):
        stop_servers(cls.server)

    def setUp(self):
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("question", lambda data: {"echo": data})
        self.sio.connect(self.server.url, transports=["websocket"], wait_timeout=WAIT)

    def tearDown(self):
        self.sio.disconnect()

    def test_call_of_a_handler_that_returns_nothing_returns_none(self):
        try:
            self.assertIsNone(self.sio.call("nothing", {"a": 1}, timeout=WAIT))
        except socketio.exceptions.TimeoutError:
            self.fail("call('nothing') was not answered within %.1f s\n%s" % (WAIT, self.server.stderr_tail()))

    def test_call_of_a_kept_event_returns_the_later_answer(self):
        self.assertEqual(self.sio.call("later", {"q": 1}, timeout=WAIT), {"echo": {"q": 1}})


if __name__ == "__main__":
    unittest.main()
