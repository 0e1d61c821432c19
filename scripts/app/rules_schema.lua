-- The schema of rules.lua: every key with its type and bounds. check()
-- returns the rules, or raises naming the key, so that a bad edit is
-- refused at load and the previous rules stay.
local SCHEMA = {
  room = {
    max_length = { type = "integer", min = 1, max = 1024 },
    max_users = { type = "integer", min = 1, max = 1000000 },
  },
  message = {
    max_length = { type = "integer", min = 1, max = 1000000 },
  },
  rate = {
    per_second = { type = "number", min = 0.001, max = 1000000 },
    burst = { type = "integer", min = 1, max = 1000000 },
  },
  file = {
    max_bytes = { type = "integer", min = 1, max = 1073741824 },
    max_name_bytes = { type = "integer", min = 1, max = 4096 },
    types = { type = "strings" },
  },
}

local function check_value(path, spec, v)
  if spec.type == "strings" then
    if type(v) ~= "table" then return nil, path .. " must be a list of strings" end
    for i, s in ipairs(v) do
      if type(s) ~= "string" then return nil, ("%s[%d] must be a string"):format(path, i) end
    end
    return true
  end
  if spec.type == "integer" and math.type(v) ~= "integer" then
    return nil, ("%s must be an integer, not %s"):format(path, tostring(v))
  end
  if type(v) ~= "number" then return nil, ("%s must be a number, not %s"):format(path, type(v)) end
  if v < spec.min or v > spec.max then
    return nil, ("%s must be from %s to %s, not %s"):format(path, spec.min, spec.max, v)
  end
  return true
end

local function check(rules)
  if type(rules) ~= "table" then error("rules.lua must return a table", 0) end
  for section, keys in pairs(rules) do
    local spec = SCHEMA[section]
    if not spec then error(("rules.lua: unknown section '%s'"):format(tostring(section)), 0) end
    if type(keys) ~= "table" then error(("rules.lua: %s must be a table"):format(section), 0) end
    for key, v in pairs(keys) do
      local path = ("%s.%s"):format(section, tostring(key))
      if not spec[key] then error(("rules.lua: unknown key '%s'"):format(path), 0) end
      local ok, err = check_value(path, spec[key], v)
      if not ok then error("rules.lua: " .. err, 0) end
    end
  end
  for section, keys in pairs(SCHEMA) do
    for key in pairs(keys) do
      if rules[section] == nil or rules[section][key] == nil then
        error(("rules.lua: missing key '%s.%s'"):format(section, key), 0)
      end
    end
  end
  return rules
end

return { check = check, SCHEMA = SCHEMA }
