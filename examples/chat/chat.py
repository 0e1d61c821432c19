#!/usr/bin/python3
"""A terminal chat client for The Space, on the python-socketio client.

    /usr/bin/python3 examples/chat/chat.py --name alice --room lobby [--url http://localhost:8000]
    /usr/bin/python3 examples/chat/chat.py --token "$JWT" --room lobby    (a server with JWT on)

Type a line to send it to the current room; your own messages are shown too,
once the server took them. Commands: /join ROOM, /leave ROOM, /room ROOM
(switch the room you send to), /users, /file PATH (send a file to the room),
/quit. Files others send are shown with their URL, or saved into --download DIR.
"""
import argparse
import mimetypes
import os
import sys
import threading
import time
import urllib.parse
import urllib.request

import socketio

# What the server checks file contents against (rules.lua, file.types).
TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".webp": "image/webp", ".pdf": "application/pdf", ".txt": "text/plain"}


def file_type(path):
    ext = os.path.splitext(path)[1].lower()
    return TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://localhost:8000", help="the server (another host or port)")
    ap.add_argument("--name", help="your name (development mode login; not needed with --token)")
    ap.add_argument("--token", help="a JWT, when the server has authentication on")
    ap.add_argument("--room", default="lobby", help="the room to join first")
    ap.add_argument("--download", metavar="DIR", help="save files others send into DIR (else show their URL)")
    ap.add_argument("--websocket-only", action="store_true", help="skip HTTP long-polling")
    args = ap.parse_args()
    if not args.name and not args.token:
        ap.error("give --name (development mode) or --token (JWT)")

    sio = socketio.Client(reconnection=True)
    state = {"room": args.room, "me": None, "pending": {}}
    lock = threading.Lock()
    answered = threading.Condition(lock)
    interactive = sys.stdin.isatty()
    prompt = "> " if interactive else ""

    def say(line):
        with lock:
            sys.stdout.write(("\r" if interactive else "") + line + "\n" + prompt)
            sys.stdout.flush()

    # Own messages are shown when the server confirms them (message_sent),
    # so what is on screen is what the room got.
    def sent(kind, key, what):
        with lock:
            state["pending"][key] = (kind, what)

    def take(key):
        with answered:
            item = state["pending"].pop(key, None)
            answered.notify_all()
            return item

    def absolute(url):
        return urllib.parse.urljoin(args.url, url)

    @sio.on("connected")
    def on_connected(data):
        state["me"] = data["user"]
        say(f"* connected as {data['user']['name']} ({data['user']['id']})")
        sio.emit("join_room", {"room": state["room"]})

    @sio.on("joined_room")
    def on_joined(data):
        names = ", ".join(u["name"] for u in data.get("users", []))
        say(f"* joined {data['room']}: {data.get('count', 0)} here ({names})")

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

    @sio.on("message_sent")
    def on_message_sent(data):
        item = take(data.get("client_msg_id"))
        me = state["me"]["name"] if state["me"] else "me"
        if item:
            say(f"[{data['room']}] {me}: {item[1]}")

    @sio.on("file_sent")
    def on_file_sent(data):
        take("file:" + data["name"])
        say(f"[{data['room']}] you sent {data['name']} ({data['size']} bytes, {data['type']}): {absolute(data['url'])}")

    @sio.on("new_file")
    def on_new_file(data):
        who = data["user"]["name"]
        url = absolute(data["url"])
        if not args.download:
            say(f"[{data['room']}] {who} sent {data['name']} ({data['size']} bytes, {data['type']}): {url}")
            return

        def fetch():
            target = os.path.join(args.download, os.path.basename(data["name"]) or "file")
            try:
                with urllib.request.urlopen(url, timeout=30) as r, open(target, "wb") as f:
                    f.write(r.read())
                say(f"[{data['room']}] {who} sent {data['name']}: saved to {target}")
            except OSError as e:
                say(f"! download of {url} failed: {e}")
        threading.Thread(target=fetch, daemon=True).start()

    @sio.on("room_users")
    def on_users(data):
        say(f"* in {data['room']}: " + ", ".join(u["name"] for u in data["users"]))

    @sio.on("error")
    def on_error(data):
        if data.get("event") in ("send_message", "send_file"):
            with answered:  # the request it answers is over
                for key, (kind, _) in list(state["pending"].items()):
                    if kind == data.get("event"):
                        del state["pending"][key]
                        break
                answered.notify_all()
        say(f"! {data.get('event')}: {data.get('code')} ({data.get('message')})")

    @sio.event
    def disconnect():
        say("* disconnected")

    auth = {"token": args.token} if args.token else {"name": args.name}
    transports = ["websocket"] if args.websocket_only else None
    try:
        sio.connect(args.url, auth=auth, transports=transports, wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        print(f"cannot connect to {args.url}: {e}", file=sys.stderr)
        return 1

    sys.stdout.write(prompt)
    sys.stdout.flush()
    seq = 0
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
        elif cmd == "/file" and arg:
            path = os.path.expanduser(arg)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                say(f"! cannot read {path}: {e}")
                continue
            name = os.path.basename(path)
            sent("send_file", "file:" + name, name)
            # bytes go as a Socket.IO binary attachment
            sio.emit("send_file", {"room": state["room"], "name": name, "type": file_type(path), "data": data})
        elif cmd.startswith("/"):
            say("commands: /join ROOM, /leave ROOM, /room ROOM, /users, /file PATH, /quit")
        else:
            seq += 1
            msg_id = f"{os.getpid()}-{seq}"
            sent("send_message", msg_id, line)
            sio.emit("send_message", {"room": state["room"], "text": line, "client_msg_id": msg_id})
    # At the end of piped input: wait (bounded) for the answers to what was sent.
    deadline = time.monotonic() + 10
    with answered:
        while state["pending"] and time.monotonic() < deadline:
            answered.wait(deadline - time.monotonic())
    sio.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
