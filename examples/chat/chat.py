#!/usr/bin/python3
"""A terminal chat client for The Space, on the python-socketio client.

    /usr/bin/python3 examples/chat/chat.py --name alice --room lobby [--url http://localhost:8000]

Type a line to send it to the current room. Commands: /join ROOM, /leave ROOM,
/room ROOM (switch the room you send to), /users, /quit.
"""
import argparse
import sys
import threading

import socketio


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://localhost:8000")
    ap.add_argument("--name", required=True, help="your name (development mode login)")
    ap.add_argument("--room", default="lobby", help="the room to join first")
    ap.add_argument("--token", help="a JWT, when the server has authentication on")
    ap.add_argument("--websocket-only", action="store_true", help="skip HTTP long-polling")
    args = ap.parse_args()

    sio = socketio.Client(reconnection=True)
    state = {"room": args.room, "me": None}
    lock = threading.Lock()

    def say(line):
        with lock:
            sys.stdout.write("\r" + line + "\n> ")
            sys.stdout.flush()

    @sio.on("connected")
    def on_connected(data):
        state["me"] = data["user"]
        say(f"* connected as {data['user']['name']} ({data['user']['id']})")
        sio.emit("join_room", {"room": state["room"]})

    @sio.on("joined_room")
    def on_joined(data):
        names = ", ".join(u["name"] for u in data["users"])
        say(f"* joined {data['room']}: {data['count']} here ({names})")

    @sio.on("left_room")
    def on_left(data):
        say(f"* left {data['room']}")

    @sio.on("user_joined_room")
    def on_user_joined(data):
        say(f"* {data['user']['name']} joined {data['room']}")

    @sio.on("user_left_room")
    def on_user_left(data):
        say(f"* {data['user']['name']} left {data['room']}")

    @sio.on("new_message")
    def on_message(data):
        say(f"[{data['room']}] {data['user']['name']}: {data['text']}")

    @sio.on("room_users")
    def on_users(data):
        say(f"* in {data['room']}: " + ", ".join(u["name"] for u in data["users"]))

    @sio.on("error")
    def on_error(data):
        say(f"! {data.get('event')}: {data.get('code')} ({data.get('message')})")

    @sio.event
    def disconnect():
        say("* disconnected")

    auth = {"name": args.name}
    if args.token:
        auth["token"] = args.token
    transports = ["websocket"] if args.websocket_only else None
    try:
        sio.connect(args.url, auth=auth, transports=transports, wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        print(f"cannot connect to {args.url}: {e}", file=sys.stderr)
        return 1

    sys.stdout.write("> ")
    sys.stdout.flush()
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        cmd, _, arg = line.partition(" ")
        if cmd == "/quit":
            break
        elif cmd == "/join" and arg:
            state["room"] = arg
            sio.emit("join_room", {"room": arg})
        elif cmd == "/leave" and arg:
            sio.emit("leave_room", {"room": arg})
        elif cmd == "/room" and arg:
            state["room"] = arg
            say(f"* sending to {arg}")
        elif cmd == "/users":
            sio.emit("get_room_users", {"room": state["room"]})
        elif cmd.startswith("/"):
            say("commands: /join ROOM, /leave ROOM, /room ROOM, /users, /quit")
        else:
            sio.emit("send_message", {"room": state["room"], "text": line})
    sio.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
