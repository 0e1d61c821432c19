-- join_room {room, history?, since?} -> joined_room {room, users, count};
-- the others get user_joined_room when this user was not in the room yet.
--   history = N (0 to 200): joined_room also carries {history, offset}: the
--     room's last N messages (oldest first) and its latest offset (null when
--     it has none).
--   since = OFFSET (what /ws?since=OFFSET&room=ROOM sends for each pair):
--     joined_room, then every new_message/new_file of the room after OFFSET,
--     oldest first, then anything live (held until the replay went out).
-- The history is read off the event loop; the answer follows.
local space = require "space"
local rules = require "rules"
local event = require "app.event"

local REPLAY_PAGE = 1000 -- messages read per step of a replay

-- Sends answer, then the room's messages after since (page by page, none
-- past the bound of the first page: later ones come live), then releases
-- the connection's held output (also when a step fails: the connection
-- must not stay held).
local function replay(conn, ev, room, answer, since)
  local bound, page
  -- One page out; true when another was asked for.
  local function step(messages, has_more, err)
    if not messages then
      space.log("error", "join_room: " .. tostring(err))
      messages, has_more = {}, false
    end
    conn:ahead(true)
    if answer then
      conn:reply(ev, "joined_room", answer)
      answer = nil
    end
    for _, m in ipairs(messages) do conn:emit(m.event, m.data) end
    conn:ahead(false)
    if not has_more then return false end
    space.history(room, { after = messages[#messages].data.offset, upto = bound, limit = REPLAY_PAGE, events = true }, page)
    return true
  end
  page = function(messages, has_more, err)
    if not conn:is_open() then return end
    local ok, more = pcall(step, messages, has_more, err)
    if ok and more then return end
    conn:ahead(false)
    conn:release()
    if not ok then error(more, 0) end
  end
  bound = space.history(room, { after = since, limit = REPLAY_PAGE, events = true }, page)
end

return event({
  { "room", "room" },
  { "history", "integer", optional = true, min = 0, max = 200, message = "'history' must be 0 to 200" },
  { "since", "string", optional = true, min = 16, max = 16, pattern = "^[0-9a-f]*$",
    message = "'since' must be an offset (as in a message's 'offset')" },
  ev = true,
}, function(conn, data, ev)
  local room, n, since = data.room, data.history, data.since
  if n and since then return nil, "invalid_payload", "'history' or 'since', not both" end
  if not conn:in_room(room) then
    local users = space.room_size(room)
    if users >= rules.room.max_users and not space.room_has_user(room, conn:user().id) then
      return nil, "room_full", ("room %s has %d users, the most it takes"):format(room, users)
    end
    if since then conn:hold() end -- before joining: nothing live overtakes the replay
    local _, user_is_new = conn:join(room)
    if user_is_new then
      conn:to(room, "user_joined_room", { room = room, user = conn:user() })
    end
  elseif since then
    conn:hold()
  end
  local users, count = space.room_users(room)
  local answer = { room = room, users = users, count = count }
  if since then return replay(conn, ev, room, answer, since) end
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
