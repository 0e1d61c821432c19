-- The rules of The Space (PROTOCOL.md §5). Plain data: edit and save, the
-- next event obeys. A wrong type, a value out of range or an unknown key is
-- refused when the scripts load (see app/rules_schema.lua).
return {
  room = {
    max_length = 64,      -- characters in a room name (letters, digits, _ - . :)
    max_users = 10000,    -- distinct users in one room
  },
  message = {
    max_length = 4000,    -- Unicode code points, after trimming whitespace
  },
  rate = {
    per_second = 20,      -- send_message and send_file, per connection
    burst = 40,
  },
  file = {
    max_bytes = 10485760, -- decoded size
    max_name_bytes = 255,
    types = { "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain" },
  },
  history = {
    max_messages = 1000,  -- kept per room (new_message and new_file); 0 turns history off
    max_age_s = 604800,   -- 7 days; older messages are dropped; 0 turns history off
  },
}
