-- schema: checks plain data against a plain-data schema, for the rules
-- (scripts/rules.lua), every plugin's config and the fields of an event's
-- data (scripts/app/event.lua). Built into the server; scripts reach it as
-- require "space.schema".
--
-- A schema is { fields = fields, open = true? }. fields is either a map
-- name -> field, checked in name order, or a list of fields each with its
-- `name`, checked in list order (the first failure is the one reported, so
-- the order decides which error a value with several faults gets).
-- A field is a table with
--   type        "string" | "number" | "integer" | "boolean" | "array" | "record",
--               or a list of them (any one will do); absent: any value
--   required    true: the key must be given (else the default, if any, is used)
--   default     the value when absent
--   min, max    bounds of a number, or of an array's length / a string's length
--   pattern     a Lua pattern a string must match (anchor it: "^...$")
--   one_of      the allowed values
--   elements    for "array": the field every element must satisfy
--   fields      for "record": its fields (a nested schema)
--   open        for "record" (and a schema): keys it does not name are allowed
--               and kept, and the result is the value itself, defaults written
--               into it; otherwise such keys are refused, so that a typo never
--               passes silently, and the result is a new table
--   description what it is for (shown in error messages of nothing; for people)
-- Other keys of a field are left alone: a caller may note its own there.
local M = {}

local function describe(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

-- How messages name each type.
local NOUN = {
  string = "a string", number = "a number", integer = "an integer", boolean = "a boolean",
  array = "a list", record = "a table",
}

local function has_type(t, v)
  if t == "integer" then return math.type(v) == "integer" end
  if t == "number" then return type(v) == "number" end
  if t == "array" or t == "record" then return type(v) == "table" end
  return type(v) == t
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  -- debug's: an array's metatable is protected (getmetatable gives its name)
  return setmetatable(c, debug.getmetatable(v))
end

-- nil, message and what failed: the path, the field (nil for an unknown
-- key) and the reason ("missing", "unknown", "type", "min", "max",
-- "pattern", "one_of" or "schema"), for callers that answer in their own words.
local function fail(path, field, reason, message)
  return nil, message, { path = path, field = field, reason = reason }
end

local check_value

-- A field's check: check_value, behind a shortcut for the usual case of a
-- scalar of the right type within its bounds, which answers the value
-- without the general walk (an event's fields are checked at every event).
-- The shortcut only ever accepts what check_value accepts; anything else
-- goes the long way, which says what is wrong.
local function field_check(orders, field)
  local function long(v, path) return check_value(orders, field, v, path) end
  local t = field.type
  if t == nil then return long end
  local list = type(t) == "table" and t or { t }
  local lua_types, integer = {}, false
  for _, name in ipairs(list) do
    if name == "string" or name == "number" or name == "boolean" then
      lua_types[name] = true
    elseif name == "integer" then
      integer = true
    else
      return long -- any type, lists, records, or a name the long way refuses
    end
  end
  if field.one_of or (field.pattern and type(field.pattern) ~= "string") then return long end
  local min, max, pattern = field.min, field.max, field.pattern
  local find, math_type = string.find, math.type
  -- Strings that matched the pattern: a field checked at every event sees
  -- the same few values again (a room's name), and a table lookup costs a
  -- fraction of a pattern match. Bounded: emptied when it fills.
  local matched, n_matched = {}, 0
  local function matches(v)
    if matched[v] then return true end
    if not find(v, pattern) then return false end
    if n_matched >= 1024 then matched, n_matched = {}, 0 end
    matched[v], n_matched = true, n_matched + 1
    return true
  end
  return function(v, path)
    local tv = type(v)
    if lua_types[tv] or (integer and math_type(v) == "integer") then
      local size = tv == "number" and v or tv == "string" and #v or nil
      if (not size or ((not min or size >= min) and (not max or size <= max)))
          and (not pattern or tv ~= "string" or matches(v)) then
        return v
      end
    end
    return long(v, path)
  end
end

-- The fields of a record in check order (names, and each one's check) and
-- the fields by name; worked out once per fields table and check context.
local function plan(orders, fields)
  local names, checks, known = {}, {}, {}
  if fields[1] ~= nil then
    for i, field in ipairs(fields) do names[i], known[field.name] = field.name, field end
  else
    for name in pairs(fields) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do known[name] = fields[name] end
  end
  for i, name in ipairs(names) do checks[i] = field_check(orders, known[name]) end
  local p = { names = names, checks = checks, known = known, n = #names }
  orders[fields] = p
  return p
end

local function check_record(orders, spec, value, path)
  if type(value) ~= "table" then
    return fail(path, spec, "type", ("%s must be a table, not %s"):format(path, type(value)))
  end
  local fields = spec.fields or {}
  local p = orders[fields] or plan(orders, fields)
  if not spec.open then
    for k in pairs(value) do
      if type(k) ~= "string" or not p.known[k] then
        local sub = (path == "" and "" or path .. ".") .. tostring(k)
        return fail(sub, nil, "unknown", ("unknown key '%s'"):format(sub))
      end
    end
  end
  -- An open record keeps what it does not name: it is its own result, with
  -- defaults written into it (and nothing allocated when none are due).
  local out = spec.open and value or {}
  local names, checks, known = p.names, p.checks, p.known
  for i = 1, p.n do
    local name = names[i]
    local sub = path == "" and name or path .. "." .. name
    local v = value[name]
    if v == nil then
      local field = known[name]
      if field.default ~= nil then
        v = copy(field.default)
      elseif field.required then
        return fail(sub, field, "missing", ("missing key '%s'"):format(sub))
      end
    end
    if v ~= nil then
      local ok, err, failure = checks[i](v, sub)
      if ok == nil then return nil, err, failure end
      if out[name] ~= ok then out[name] = ok end
    end
  end
  return out
end

-- The type of v among the field's types, or nil, message, failure. The
-- usual answer allocates nothing (it runs per field of every event).
local function type_of(field, v, path)
  local t = field.type
  if type(t) == "string" then
    if NOUN[t] and has_type(t, v) then return t end
  elseif type(t) == "table" then
    for _, name in ipairs(t) do
      if NOUN[name] and has_type(name, v) then return name end
    end
  end
  local list = type(t) == "table" and t or { t }
  local nouns, structured = {}, false
  for i, name in ipairs(list) do
    if not NOUN[name] then
      return fail(path, field, "schema", ("%s: the schema names an unknown type %s"):format(path, describe(name)))
    end
    nouns[i] = NOUN[name]
    structured = structured or name == "array" or name == "record"
  end
  -- A list or table expected: say what came by its type only.
  local shown = structured and type(v) or describe(v)
  return fail(path, field, "type", ("%s must be %s, not %s"):format(path, table.concat(nouns, " or "), shown))
end

function check_value(orders, field, v, path)
  local t = field.type
  if t ~= nil then
    local err, failure
    t, err, failure = type_of(field, v, path)
    if t == nil then return nil, err, failure end
  end
  if t == "array" then
    local n = #v
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > n then
        return fail(path, field, "type", ("%s must be a list (found key %s)"):format(path, describe(k)))
      end
    end
    local out = {}
    for i = 1, n do
      local ok, err, failure = check_value(orders, field.elements or {}, v[i], ("%s[%d]"):format(path, i))
      if ok == nil then return nil, err, failure end
      out[i] = ok
    end
    v = out
  elseif t == "record" then
    return check_record(orders, field, v, path)
  end
  if field.min or field.max then
    local size = type(v) == "number" and v or (type(v) == "string" or type(v) == "table") and #v or nil
    if size then
      local what = type(v) == "number" and "" or "of length "
      local shown = describe(type(v) == "number" and v or size)
      if field.min and size < field.min then
        return fail(path, field, "min", ("%s must be %sat least %s, not %s"):format(path, what, field.min, shown))
      end
      if field.max and size > field.max then
        return fail(path, field, "max", ("%s must be %sat most %s, not %s"):format(path, what, field.max, shown))
      end
    end
  end
  if field.pattern and type(v) == "string" and not v:find(field.pattern) then
    return fail(path, field, "pattern", ("%s must match %s, not %s"):format(path, field.pattern, describe(v)))
  end
  if field.one_of then
    local found = false
    for _, allowed in ipairs(field.one_of) do
      if v == allowed then found = true break end
    end
    if not found then
      local names = {}
      for i, allowed in ipairs(field.one_of) do names[i] = describe(allowed) end
      return fail(path, field, "one_of", ("%s must be one of %s, not %s"):format(path, table.concat(names, ", "), describe(v)))
    end
  end
  return v
end

-- compile(schema) -> check(value): the check below, with each record's field
-- order and field checks worked out at first use and kept, for a schema
-- checked often (an event's fields, at every event). The schema must not
-- change after.
function M.compile(schema)
  if type(schema) ~= "table" or type(schema.fields) ~= "table" then
    error("a schema is a table with a 'fields' table", 2)
  end
  local orders = {}
  return function(value)
    if value == nil then value = {} end
    return check_record(orders, schema, value, "")
  end
end

-- check(schema, value) -> the value with defaults filled in | nil, "key: message", failure
function M.check(schema, value)
  if type(schema) ~= "table" or type(schema.fields) ~= "table" then
    return nil, "a schema is a table with a 'fields' table"
  end
  if value == nil then value = {} end
  return check_record({}, schema, value, "")
end

return M
