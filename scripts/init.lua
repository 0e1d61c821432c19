-- The Space app: what the server runs for each namespace. The server looks
-- handlers up here per event, so a reload takes effect at the next event.
local space = require "space"
local auth = require "app.auth"

local function on_connect(conn)
  conn:emit("connected", { sid = conn:id(), user = conn:user(), server_time = space.now() })
end

-- Leaving every room tells the others, as leave_room does.
local function on_disconnect(conn)
  local user = conn:user()
  for _, room in ipairs(conn:rooms()) do
    local _, user_left = conn:leave(room)
    if user_left then space.to(room, "user_left_room", { room = room, user = user }) end
  end
end

return {
  -- rules.lua is checked against this schema at every load (a bad edit is refused).
  rules = "rules",
  rules_schema = require "app.rules_schema",
  -- Plugins from --plugins DIR, each with its config (checked by its schema.lua).
  plugins = {
    ratelimit = { events = { "send_message", "send_file" } },
    -- With a JWT key configured: claims -> user, and the checks an operator adds.
    jwt = { banned_users = {} }, -- add required_role = "chat" to demand a role
  },
  namespaces = {
    ["/"] = {
      authenticate = auth.authenticate,
      on_connect = on_connect,
      on_disconnect = on_disconnect,
      events = {
        join_room = require "events.join_room",
        leave_room = require "events.leave_room",
        send_message = require "events.send_message",
        get_room_users = require "events.get_room_users",
        get_history = require "events.get_history",
        send_file = require "events.send_file",
        refresh_token = require "events.refresh_token",
      },
    },
  },
}
