-- app/validate.lua: trim against the plain definition it replaced (a fast
-- path must not change a single result), and the message text check.
package.path = "scripts/?.lua;" .. package.path

local function load_validate()
  local saved = package.loaded.rules
  package.loaded.rules = dofile("scripts/rules.lua")
  local validate = dofile("scripts/app/validate.lua")
  package.loaded.rules = saved
  return validate
end

-- The definition: strip ASCII whitespace and the six Unicode spaces from
-- both ends until nothing changes.
local SPACES = "[ \t\n\r\v\f]"
local UNICODE_SPACES = { "\u{00A0}", "\u{FEFF}", "\u{3000}", "\u{2028}", "\u{2029}", "\u{202F}" }
local function reference_trim(s)
  local changed = true
  while changed do
    changed = false
    local t = s:gsub("^" .. SPACES .. "+", ""):gsub(SPACES .. "+$", "")
    for _, u in ipairs(UNICODE_SPACES) do
      if t:sub(1, #u) == u then t, changed = t:sub(#u + 1), true end
      if #t >= #u and t:sub(-#u) == u then t, changed = t:sub(1, -#u - 1), true end
    end
    s = t
  end
  return s
end

describe("validate.trim", function()
  local validate = load_validate()

  it("trims ASCII and Unicode spaces from both ends, not inside", function()
    assert.are.equal("hello", validate.trim("  hello \n"))
    assert.are.equal("a b", validate.trim("\u{3000}\t\u{00A0} a b\u{FEFF}\u{2028} \u{202F}"))
    assert.are.equal("", validate.trim(" \u{2029}\r\v\f "))
    assert.are.equal("", validate.trim(""))
    assert.are.equal("x\u{00A0}y", validate.trim("x\u{00A0}y"))
  end)

  it("keeps other characters that share a first or last byte with a space", function()
    -- U+00A1 starts with 0xC2 like U+00A0; U+20A0 ends with 0xA0; U+2027 and U+3001 are near misses.
    for _, s in ipairs({ "\u{00A1}", "\u{20A0}", "\u{2027}", "\u{3001}", "\u{FEFE}", "\u{00A1}x\u{20A0}" }) do
      assert.are.equal(s, validate.trim(s))
    end
  end)

  it("agrees with the plain definition on every mix of spaces, near misses and text", function()
    local pieces = { "", " ", "\t", "\n", "\r", "\v", "\f", "a", "xy", "\u{00A0}", "\u{FEFF}", "\u{3000}",
      "\u{2028}", "\u{2029}", "\u{202F}", "\u{00A1}", "\u{20A0}", "\u{2027}", "\u{3001}", "\xC2", "\xA0", "\xE2\x80" }
    local n = #pieces
    for i = 1, n do
      for j = 1, n do
        for k = 1, n do
          local s = pieces[i] .. pieces[j] .. pieces[k]
          assert.are.equal(reference_trim(s), validate.trim(s))
          s = pieces[i] .. pieces[j] .. "mid" .. pieces[k] .. pieces[j]
          assert.are.equal(reference_trim(s), validate.trim(s))
        end
      end
    end
  end)

  it("agrees with the plain definition on runs longer than the blocks it skips at once", function()
    local runs = { (" "):rep(63), (" "):rep(64), (" "):rep(65), ("\t"):rep(130), (" "):rep(64) .. "\u{3000}",
      "\u{00A0}" .. (" "):rep(127), (" "):rep(60) .. "y" .. (" "):rep(70), "\xA0" .. (" "):rep(64) }
    for _, a in ipairs(runs) do
      for _, b in ipairs(runs) do
        for _, mid in ipairs({ "", "x", "x y" }) do
          local s = a .. mid .. b
          assert.are.equal(reference_trim(s), validate.trim(s))
        end
      end
    end
  end)
end)

describe("validate.message_text", function()
  local validate = load_validate()

  it("trims, then counts code points against the limit", function()
    assert.are.equal("héllo", (validate.message_text(" \u{3000}héllo\n", 5)))
    assert.are.same({ nil, "empty_message", "the message is empty" }, { validate.message_text(" \t\u{00A0}", 5) })
    local ok, code, msg = validate.message_text("héllo!", 5)
    assert.is_nil(ok)
    assert.are.equal("message_too_long", code)
    assert.are.equal("messages have at most 5 characters, this one has 6", msg)
  end)

  it("keeps whitespace beyond the limit's bytes out of the count", function()
    local pad = (" "):rep(validate.TEXT_EDGE_BYTES // 2)
    local text = pad .. ("\u{1F600}"):rep(5) .. pad -- 4 bytes a character: the most the limit allows
    assert.are.equal(("\u{1F600}"):rep(5), (validate.message_text(text, 5)))
  end)

  it("refuses a text longer than 4 bytes a character plus the edge whitespace before trimming it", function()
    local text = " x" .. (" "):rep(5 * 4 + validate.TEXT_EDGE_BYTES) .. "x"
    local ok, code, msg = validate.message_text(text, 5)
    assert.is_nil(ok)
    assert.are.equal("message_too_long", code)
    assert.are.equal(("messages have at most 5 characters, this one has %d bytes"):format(#text), msg)
  end)
end)
