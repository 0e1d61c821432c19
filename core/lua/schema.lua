-- schema: checks plain configuration data against a plain-data schema, for
-- the rules (scripts/rules.lua) and every plugin's config. Built into the
-- server; scripts reach it as require "space.schema".
--
-- A schema is { fields = { name = field, ... } }; a field is a table with
--   type        "string" | "number" | "integer" | "boolean" | "array" | "record"
--   required    true: the key must be given (else the default, if any, is used)
--   default     the value when absent
--   min, max    bounds of a number, or of an array's length / a string's length
--   one_of      the allowed values
--   elements    for "array": the field every element must satisfy
--   fields      for "record": its fields (a nested schema)
--   description what it is for (shown in error messages of nothing; for people)
-- check() refuses unknown keys, so that a typo never passes silently.
local M = {}

local function describe(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  -- debug's: an array's metatable is protected (getmetatable gives its name)
  return setmetatable(c, debug.getmetatable(v))
end

local check_value

local function check_record(fields, value, path)
  if type(value) ~= "table" then return nil, ("%s must be a table, not %s"):format(path, type(value)) end
  for k in pairs(value) do
    if type(k) ~= "string" or not fields[k] then
      return nil, ("unknown key '%s%s'"):format(path == "" and "" or path .. ".", tostring(k))
    end
  end
  local out = {}
  local names = {}
  for name in pairs(fields) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local field = fields[name]
    local sub = path == "" and name or path .. "." .. name
    local v = value[name]
    if v == nil then
      if field.default ~= nil then
        v = copy(field.default)
      elseif field.required then
        return nil, ("missing key '%s'"):format(sub)
      end
    end
    if v ~= nil then
      local ok, err = check_value(field, v, sub)
      if ok == nil then return nil, err end
      out[name] = ok
    end
  end
  return out
end

function check_value(field, v, path)
  local t = field.type
  if t == "integer" then
    if math.type(v) ~= "integer" then return nil, ("%s must be an integer, not %s"):format(path, describe(v)) end
  elseif t == "number" then
    if type(v) ~= "number" then return nil, ("%s must be a number, not %s"):format(path, describe(v)) end
  elseif t == "string" or t == "boolean" then
    if type(v) ~= t then return nil, ("%s must be a %s, not %s"):format(path, t, describe(v)) end
  elseif t == "array" then
    if type(v) ~= "table" then return nil, ("%s must be a list, not %s"):format(path, type(v)) end
    local n = #v
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > n then
        return nil, ("%s must be a list (found key %s)"):format(path, describe(k))
      end
    end
    local out = {}
    for i = 1, n do
      local ok, err = check_value(field.elements or {}, v[i], ("%s[%d]"):format(path, i))
      if ok == nil then return nil, err end
      out[i] = ok
    end
    v = out
  elseif t == "record" then
    return check_record(field.fields or {}, v, path)
  elseif t ~= nil then
    return nil, ("%s: the schema names an unknown type %s"):format(path, describe(t))
  end
  local size = type(v) == "number" and v or (type(v) == "string" or type(v) == "table") and #v or nil
  if size then
    if field.min and size < field.min then
      return nil, ("%s must be %s%s, not %s"):format(path, type(v) == "number" and "at least " or "of length at least ",
        field.min, describe(type(v) == "number" and v or size))
    end
    if field.max and size > field.max then
      return nil, ("%s must be %s%s, not %s"):format(path, type(v) == "number" and "at most " or "of length at most ",
        field.max, describe(type(v) == "number" and v or size))
    end
  end
  if field.one_of then
    local found = false
    for _, allowed in ipairs(field.one_of) do
      if v == allowed then found = true break end
    end
    if not found then
      local names = {}
      for i, allowed in ipairs(field.one_of) do names[i] = describe(allowed) end
      return nil, ("%s must be one of %s, not %s"):format(path, table.concat(names, ", "), describe(v))
    end
  end
  return v
end

-- check(schema, value) -> the value with defaults filled in | nil, "key: message"
function M.check(schema, value)
  if type(schema) ~= "table" or type(schema.fields) ~= "table" then
    return nil, "a schema is a table with a 'fields' table"
  end
  if value == nil then value = {} end
  return check_record(schema.fields, value, "")
end

return M
