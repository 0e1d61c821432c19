-- Checks of client text shared by the handlers, beyond the fields an event
-- declares (app/event.lua): each returns the value, or nil, code, message
-- as the handlers answer.
local M = {}

-- Whitespace removed from both ends of a message: ASCII space, tab, newlines
-- and the no-break and ideographic spaces JavaScript's trim() also removes.
-- Walked from each end, so the cost is the whitespace removed: a pattern
-- such as `%s+$` retries from every space of an inner run and is quadratic
-- on " x" .. (" "):rep(N) .. "x" (one C call no budget stops). Runs of
-- ASCII spaces are skipped in C: from the front with one search, from the
-- back 64 bytes at a time.
local ASCII = {}
for _, b in ipairs({ 9, 10, 11, 12, 13, 32 }) do ASCII[b] = true end
local NOT_ASCII_SPACE, ONLY_ASCII_SPACES, BLOCK = "[^ \t\n\r\v\f]", "^[ \t\n\r\v\f]*$", 64
-- The multi-byte spaces by their first byte and, apart, by their last byte:
-- lists of the whole sequences to compare.
local UNICODE_SPACES = { "\u{00A0}", "\u{FEFF}", "\u{3000}", "\u{2028}", "\u{2029}", "\u{202F}" }
local BY_FIRST, BY_LAST = {}, {}
for _, u in ipairs(UNICODE_SPACES) do
  local f, l = u:byte(1), u:byte(-1)
  BY_FIRST[f] = BY_FIRST[f] or {}
  BY_LAST[l] = BY_LAST[l] or {}
  table.insert(BY_FIRST[f], u)
  table.insert(BY_LAST[l], u)
end

local byte, find, sub = string.byte, string.find, string.sub

-- The length of the multi-byte space starting at s[i], within s[i..j], or nil.
local function unicode_space_at(s, i, j)
  local us = BY_FIRST[byte(s, i)]
  if us then
    for _, u in ipairs(us) do
      if i + #u - 1 <= j and sub(s, i, i + #u - 1) == u then return #u end
    end
  end
end

-- The length of the space (ASCII or multi-byte) ending at s[j], within s[i..j], or nil.
local function space_ending_at(s, i, j)
  local b = byte(s, j)
  if ASCII[b] then return 1 end
  local us = BY_LAST[b]
  if us then
    for _, u in ipairs(us) do
      if j - #u + 1 >= i and sub(s, j - #u + 1, j) == u then return #u end
    end
  end
end

function M.trim(s)
  local i, j = 1, #s
  while i <= j do
    i = find(s, NOT_ASCII_SPACE, i) or j + 1
    local n = i <= j and unicode_space_at(s, i, j)
    if not n then break end
    i = i + n
  end
  while j >= i do
    while j - BLOCK >= i and ASCII[byte(s, j - BLOCK + 1)] and find(sub(s, j - BLOCK + 1, j), ONLY_ASCII_SPACES) do
      j = j - BLOCK
    end
    local n = space_ending_at(s, i, j)
    if not n then break end
    j = j - n
  end
  if i == 1 and j == #s then return s end
  return sub(s, i, j)
end

-- The bytes a message text may have before it is trimmed: 4 per character
-- (UTF-8) and this much whitespace around them. A longer text is refused
-- before anything looks at it, so no work on client text grows past
-- what the rules allow.
M.TEXT_EDGE_BYTES = 4096

-- A message text trimmed: text, or nil, code, message (PROTOCOL.md §5:
-- at most max_length code points, counted after trimming).
function M.message_text(text, max_length)
  if #text > max_length * 4 + M.TEXT_EDGE_BYTES then
    return nil, "message_too_long",
      ("messages have at most %d characters, this one has %d bytes"):format(max_length, #text)
  end
  text = M.trim(text)
  if #text == 0 then return nil, "empty_message", "the message is empty" end
  -- Counting code points only matters when the bytes alone exceed the limit.
  if #text > max_length then
    local length = utf8.len(text) or #text
    if length > max_length then
      return nil, "message_too_long",
        ("messages have at most %d characters, this one has %d"):format(max_length, length)
    end
  end
  return text
end

return M
