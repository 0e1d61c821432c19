-- A stand-in for the server's `space` module and connection handles, for
-- unit specs of the Lua handlers only (the integration specs use the real
-- server). Records what each connection is sent.
local M = {}

function M.new()
  local space = { null = setmetatable({}, { __name = "null" }), sent = {} }
  local ARRAY = {}
  local rooms = {} -- name -> {conns = {conn = true}}
  local clock, next_id = 1700000000000, 0

  function space.now() return clock end
  function space.advance(ms) clock = clock + ms end
  function space.new_id() next_id = next_id + 1 return ("%016x"):format(next_id) end
  function space.array(t) return setmetatable(t or {}, ARRAY) end
  function space.log() end

  local function members(room) return rooms[room] and rooms[room].conns or {} end

  function space.room_users(room)
    local seen, users = {}, space.array()
    for c in pairs(members(room)) do
      if not seen[c.user_.id] then
        seen[c.user_.id] = true
        users[#users + 1] = { id = c.user_.id, name = c.user_.name }
      end
    end
    table.sort(users, function(a, b) return a.id < b.id end)
    return users, #users
  end

  function space.room_size(room)
    local users, n = space.room_users(room)
    local conns = 0
    for _ in pairs(members(room)) do conns = conns + 1 end
    return #users, conns, n
  end

  function space.room_has_user(room, user_id)
    for c in pairs(members(room)) do if c.user_.id == user_id then return true end end
    return false
  end

  local function deliver(room, except, event, data)
    local n = 0
    for c in pairs(members(room)) do
      if c ~= except then
        c:emit(event, data)
        n = n + 1
      end
    end
    return n
  end

  function space.to(room, event, data) return deliver(room, nil, event, data) end

  -- The history: kept in memory; space.history answers from space.run_later()
  -- (the real one answers later too, never inside the call).
  local history, later = {}, {}
  function space.history_append(room, event, data)
    data.offset = space.new_id()
    history[room] = history[room] or {}
    table.insert(history[room], { event = event, data = data })
    return data.offset
  end
  function space.history(room, opts, callback)
    local upto = opts.upto or ("%016x"):format(next_id)
    local page = {}
    for _, m in ipairs(history[room] or {}) do
      local o = m.data.offset
      if o <= upto and (not opts.before or o < opts.before) and (not opts.after or o > opts.after) then
        page[#page + 1] = opts.events and m or m.data
      end
    end
    local limit, has_more = opts.limit or 50, false
    if #page > limit then
      has_more = true
      local from = opts.after and 1 or #page - limit + 1
      page = table.move(page, from, from + limit - 1, 1, {})
    end
    later[#later + 1] = function() callback(space.array(page), has_more) end
    return upto
  end
  function space.run_later()
    while #later > 0 do table.remove(later, 1)() end
  end

  local Conn = {}
  Conn.__index = Conn

  function space.connect(id, user)
    return setmetatable({ id_ = id, user_ = user, data_ = {}, inbox = {} }, Conn)
  end

  function Conn:id() return self.id_ end
  function Conn:user() return { id = self.user_.id, name = self.user_.name } end
  function Conn:data() return self.data_ end
  function Conn:emit(event, data) self.inbox[#self.inbox + 1] = { event = event, data = data } return true end
  function Conn:in_room(room) return members(room)[self] == true end
  function Conn:to(room, event, data) return deliver(room, self, event, data) end
  function Conn:is_open() return true end
  function Conn:hold() self.holds = (self.holds or 0) + 1 end
  function Conn:release() self.holds = self.holds - 1 end
  function Conn:ahead() end
  function Conn:reply(_, event, data) return self:emit(event, data) end

  local function user_count(room, user_id)
    local n = 0
    for c in pairs(members(room)) do if c.user_.id == user_id then n = n + 1 end end
    return n
  end

  function Conn:join(room)
    if self:in_room(room) then return false, false end
    local user_is_new = user_count(room, self.user_.id) == 0
    rooms[room] = rooms[room] or { conns = {} }
    rooms[room].conns[self] = true
    return true, user_is_new
  end

  function Conn:leave(room)
    if not self:in_room(room) then return false, false end
    rooms[room].conns[self] = nil
    if next(rooms[room].conns) == nil then rooms[room] = nil end
    return true, user_count(room, self.user_.id) == 0
  end

  function Conn:rooms()
    local list = {}
    for name, r in pairs(rooms) do if r.conns[self] then list[#list + 1] = name end end
    return list
  end

  -- The events this conn was sent, by name, then forgets them.
  function Conn:take(event)
    local got, rest = {}, {}
    for _, m in ipairs(self.inbox) do
      if m.event == event then got[#got + 1] = m.data else rest[#rest + 1] = m end
    end
    self.inbox = rest
    return got
  end

  return space
end

-- Loads the app from dir with `space` as its server module; returns the
-- app table and a function that replaces rules.lua's table before loading.
function M.load_app(dir, space, rules_override)
  local saved_path = package.path
  local saved = {}
  for k, v in pairs(package.loaded) do saved[k] = v end
  package.path = dir .. "/?.lua;" .. saved_path
  package.loaded.space = space
  package.loaded["space.schema"] = dofile("core/lua/schema.lua")
  if rules_override then package.loaded.rules = rules_override end
  local ok, app = pcall(require, "init")
  package.path = saved_path
  for k in pairs(package.loaded) do
    if saved[k] == nil then package.loaded[k] = nil end
  end
  if not ok then error(app, 0) end
  return app
end

return M
