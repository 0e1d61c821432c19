-- event: an event handler declared with the fields its data must have.
--
--   return event({
--     { "room", "room" },                                -- { name, type, options... }
--     { "text", "string" },
--     { "client_msg_id", { "string", "number" }, optional = true },
--     in_room = true,                                    -- the sender must be in data.room
--   }, function(conn, data) ... end)
--
-- The result is the handler the server calls. Before the body runs: the
-- data must be a JSON object, then each field is checked in the order
-- declared (by space.schema), then the room membership; the first failure
-- answers as the protocol says (PROTOCOL.md §4):
--   not an object                 invalid_payload "data must be a JSON object"
--   a field missing or of another
--   JSON type                     invalid_payload "'text' must be a string"
--                                 ("'data' is missing" for a field of type "any")
--   a field out of its bounds     the field's code and message (a room name: invalid_room)
--   not in the room               not_in_room "you are not in room <room>"
-- The body gets data itself, checked, with the defaults of absent fields
-- written into it.
--
-- A field's type is a space.schema type ("string", "number", "integer",
-- "boolean", "array", "record"), a list of them, "any" (present, whatever
-- it is) or a kind the app defines below ("room"). Options: optional = true,
-- and the schema's min, max, pattern, one_of, default, elements, fields,
-- with code and message for the refusal of a value out of bounds.
-- ev = true passes the body ev (function(conn, data, ev)); the server
-- builds ev only for a handler that takes it, so the others go without.
--
-- A client's string of 64 KiB or more arrives as a file handle (for
-- space.store_file, without a copy through Lua); a field declared as a
-- string (or a kind that is one) gets it back as a string, so that its
-- checks answer as for any other string. An "any" field keeps the handle.
local rules = require "rules"
local schema = require "space.schema"

-- The app's own kinds of field, made when the handler first runs (when the
-- rules are loaded and checked).
local KINDS = {
  room = function()
    local max = rules.room.max_length
    return {
      type = "string", min = 1, max = max, pattern = "^[%w_%-%.:]*$",
      code = "invalid_room",
      message = ("room names have 1 to %d characters: letters, digits, _ - . :"):format(max),
    }
  end,
}

local SCHEMA_TYPES = { string = true, number = true, integer = true, boolean = true, array = true, record = true }
local FIELD_OPTIONS = {
  optional = true, min = true, max = true, pattern = true, one_of = true, default = true,
  elements = true, fields = true, open = true, code = true, message = true, description = true,
}
local EVENT_OPTIONS = { in_room = true, ev = true }

-- The JSON names of the types, for the answers clients read.
local NOUN = {
  string = "a string", number = "a number", integer = "an integer", boolean = "a boolean",
  array = "an array", record = "an object",
}

-- What a body without ev = true gets as its third argument: using it says
-- what is missing, rather than "attempt to index a nil value".
local function no_ev()
  error("this handler is declared without ev = true, so it gets no ev", 2)
end
local NO_EV = setmetatable({}, { __index = no_ev, __newindex = no_ev, __metatable = false })

local function is_type(t)
  if t == "any" or SCHEMA_TYPES[t] or KINDS[t] then return true end
  if type(t) ~= "table" or #t == 0 then return false end
  for _, name in ipairs(t) do
    if not SCHEMA_TYPES[name] then return false end
  end
  return true
end

-- Checks a declaration, so that a mistake stops the load. The message
-- names the declaration by its fields: `return event(...)` is a tail call,
-- which leaves no line of the declaring file to point at.
local function check_declaration(decl, body)
  if type(decl) ~= "table" or type(body) ~= "function" then
    error("event(fields, handler): a table of fields and a function", 3)
  end
  local listed = {}
  for i, f in ipairs(decl) do listed[i] = type(f) == "table" and tostring(f[1]) or "?" end
  local function refuse(message)
    error(("event { %s }: %s"):format(table.concat(listed, ", "), message), 4)
  end
  local names = {}
  for k, v in pairs(decl) do
    if math.type(k) ~= "integer" and not EVENT_OPTIONS[k] then
      refuse(("unknown option '%s'"):format(tostring(k)))
    elseif math.type(k) == "integer" and (k < 1 or k > #decl or type(v) ~= "table") then
      refuse("fields are a list of { name, type, options... }")
    end
  end
  for _, f in ipairs(decl) do
    local name, t = f[1], f[2]
    if type(name) ~= "string" or name == "" then refuse("a field needs a name") end
    if names[name] then refuse(("field '%s' is declared twice"):format(name)) end
    names[name] = f
    if not is_type(t) then
      refuse(("field '%s' has an unknown type %s"):format(name, tostring(t)))
    end
    for k in pairs(f) do
      if k ~= 1 and k ~= 2 and not FIELD_OPTIONS[k] then
        refuse(("field '%s' has an unknown option '%s'"):format(name, tostring(k)))
      end
    end
  end
  if decl.in_room and not (names.room and names.room[2] == "room") then
    refuse("in_room needs a field { \"room\", \"room\" }")
  end
end

-- The schema of the declared fields, and each field's answer to a value
-- missing or of another type.
local function build(decl)
  local fields, by_name, type_error = {}, {}, {}
  for i, f in ipairs(decl) do
    local name, t = f[1], f[2]
    local field = KINDS[t] and KINDS[t]() or { type = t ~= "any" and t or nil }
    for k, v in pairs(f) do
      if k ~= 1 and k ~= 2 then field[k] = v end
    end
    field.name, field.required, field.optional = name, not f.optional, nil
    fields[i], by_name[name] = field, field
    if field.type == nil then
      type_error[field] = ("'%s' is missing"):format(name)
    else
      local nouns = {}
      for j, n in ipairs(type(field.type) == "table" and field.type or { field.type }) do nouns[j] = NOUN[n] end
      type_error[field] = ("'%s' must be %s"):format(name, table.concat(nouns, " or "))
    end
  end
  local check = schema.compile({ fields = fields, open = true })
  -- The fields that may hold a string: a file handle there becomes one.
  local stringy = {}
  for _, field in ipairs(fields) do
    for _, t in ipairs(type(field.type) == "table" and field.type or { field.type }) do
      if t == "string" then
        stringy[#stringy + 1] = field.name
        break
      end
    end
  end
  local function strings(data)
    for _, name in ipairs(stringy) do
      local v = data[name]
      if type(v) == "userdata" and getmetatable(v) == "space.file" then data[name] = tostring(v) end
    end
  end
  -- A value's refusal: nil, code, message.
  local function refuse(message, failure)
    -- the declared field it is in
    local top = by_name[failure.path] or by_name[failure.path:match("^[^.%[]*")]
    if failure.reason == "missing" or failure.reason == "type" then
      if failure.field == top then return nil, "invalid_payload", type_error[top] end
      return nil, "invalid_payload", message -- deeper inside the field: the schema's words
    end
    return nil, top.code or "invalid_payload", top.message or message
  end
  return check, refuse, strings
end

return function(decl, body)
  check_declaration(decl, body)
  local in_room = decl.in_room
  local check, refuse, strings

  local function run(conn, data, ev)
    -- A JSON object decodes to a table without metatable (arrays have one).
    if type(data) ~= "table" or getmetatable(data) ~= nil then
      return nil, "invalid_payload", "data must be a JSON object"
    end
    if not check then check, refuse, strings = build(decl) end
    strings(data)
    local fields, message, failure = check(data)
    if not fields then return refuse(message, failure) end
    if in_room and not conn:in_room(fields.room) then
      return nil, "not_in_room", "you are not in room " .. fields.room
    end
    return body(conn, fields, ev)
  end

  if decl.ev then
    return function(conn, data, ev) return run(conn, data, ev) end
  end
  return function(conn, data) return run(conn, data, NO_EV) end
end
