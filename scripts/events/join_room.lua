-- join_room {room, history?} -> joined_room {room, users, count}, and with
-- history = N (0 to 200) also {history, offset}: the room's last N messages
-- (oldest first) and its latest offset (null when it has none), read off
-- the event loop (the answer follows). The others get user_joined_room
-- when this user was not in the room yet.
local space = require "space"
local rules = require "rules"
local event = require "app.event"

return event({
  { "room", "room" },
  { "history", "integer", optional = true, min = 0, max = 200, message = "'history' must be 0 to 200" },
  ev = true,
}, function(conn, data, ev)
  local room = data.room
  if not conn:in_room(room) then
    local users = space.room_size(room)
    if users >= rules.room.max_users and not space.room_has_user(room, conn:user().id) then
      return nil, "room_full", ("room %s has %d users, the most it takes"):format(room, users)
    end
    local _, user_is_new = conn:join(room)
    if user_is_new then
      conn:to(room, "user_joined_room", { room = room, user = conn:user() })
    end
  end
  local users, count = space.room_users(room)
  local answer = { room = room, users = users, count = count }
  local n = data.history
  if n == nil then return "joined_room", answer end

  space.history(room, { limit = math.max(n, 1) }, function(messages, _, err)
    if not conn:is_open() then return end
    if not messages then
      space.log("error", "join_room: " .. tostring(err))
      messages = {}
    end
    answer.offset = #messages > 0 and messages[#messages].offset or space.null
    answer.history = n > 0 and messages or space.array()
    conn:reply(ev, "joined_room", answer)
  end)
end)
