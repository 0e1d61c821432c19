-- The reference server of the official Socket.IO v5 protocol test suite
-- (socket.io repo, docs/socket.io-protocol/v5-test-suite), as a script set:
--   "/"       on connect: emit "auth" with the CONNECT auth object;
--             "message" -> emit "message-back" with the same arguments (binary included);
--             "message-with-ack" -> answer the ack with the same arguments.
--   "/custom" on connect: emit "auth" with the CONNECT auth object.
-- Any other namespace is refused by the server (CONNECT_ERROR "Invalid namespace").
-- Run it with --ping-interval 300 --ping-timeout 200 --connect-timeout 1000 --max-payload 1000000
-- (see README.md).

-- Every connection is its own user, as without an authenticate hook; the
-- hook is here only to keep the auth object for on_connect.
local function keep_auth(conn, auth)
  conn:data().auth = auth
  return { id = "guest:" .. conn:id(), name = "guest-" .. conn:id():sub(1, 6) }
end

local function emit_auth(conn)
  conn:emit("auth", conn:data().auth or {})
end

-- Handlers take ev and return nothing, which keeps the event: the server
-- then sends nothing on its own, and an ack the client asked for is
-- answered here or not at all (as in Node, where an ack callback nobody
-- calls is never answered).
local function message(conn, _, ev)
  conn:emit("message-back", table.unpack(ev.args, 1, ev.args.n))
end

local function message_with_ack(conn, _, ev)
  conn:ack(ev, table.unpack(ev.args, 1, ev.args.n))
end

return {
  namespaces = {
    ["/"] = {
      authenticate = keep_auth,
      on_connect = emit_auth,
      events = {
        ["message"] = message,
        ["message-with-ack"] = message_with_ack,
      },
    },
    ["/custom"] = {
      authenticate = keep_auth,
      on_connect = emit_auth,
      events = {},
    },
  },
}
