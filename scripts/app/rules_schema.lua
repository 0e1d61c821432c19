-- The schema of rules.lua (PROTOCOL.md §5): every key with its type and
-- bounds, as plain data. The server checks rules.lua against it whenever
-- the scripts load; a wrong type, a value out of range, a missing or an
-- unknown key refuses the load, and the previous rules stay.
local function int(min, max, description)
  return { type = "integer", required = true, min = min, max = max, description = description }
end

return {
  fields = {
    room = { type = "record", required = true, fields = {
      max_length = int(1, 1024, "characters in a room name"),
      max_users = int(1, 1000000, "distinct users in one room"),
    } },
    message = { type = "record", required = true, fields = {
      max_length = int(1, 1000000, "code points in a message, after trimming"),
    } },
    rate = { type = "record", required = true, fields = {
      per_second = { type = "number", required = true, min = 0.001, max = 1000000,
                     description = "send_message and send_file per connection per second" },
      burst = int(1, 1000000, "messages a connection may send at once"),
    } },
    file = { type = "record", required = true, fields = {
      max_bytes = int(1, 1073741824, "decoded size of a file"),
      max_name_bytes = int(1, 4096, "bytes in a file name"),
      types = { type = "array", required = true, min = 1, elements = { type = "string" },
                description = "MIME types a file may have" },
    } },
    history = { type = "record", required = true, fields = {
      max_messages = int(0, 1000000, "messages kept per room (0: history off)"),
      max_age_s = int(0, 315360000, "seconds a message is kept (0: history off)"),
    } },
  },
}
