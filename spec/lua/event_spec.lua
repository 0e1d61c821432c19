-- app/event.lua: handlers declared with their fields. Each kind of field,
-- each answer (the codes and messages clients read, PROTOCOL.md §4), the
-- order of the checks, ev, and the declarations it refuses.

-- The module as a generation loads it: with its rules and space.schema.
local function load_event(rules_patch)
  local rules = dofile("scripts/rules.lua")
  if rules_patch then rules_patch(rules) end
  local saved_rules, saved_schema = package.loaded.rules, package.loaded["space.schema"]
  package.loaded.rules = rules
  package.loaded["space.schema"] = dofile("core/lua/schema.lua")
  local event = dofile("scripts/app/event.lua")
  package.loaded.rules, package.loaded["space.schema"] = saved_rules, saved_schema
  return event
end

-- A connection that is in the rooms given.
local function conn_in(...)
  local rooms = {}
  for _, r in ipairs({ ... }) do rooms[r] = true end
  return { in_room = function(_, room) return rooms[room] == true end }
end

-- A handler that answers "ok" with the data its body got.
local function echo(event, decl)
  return event(decl, function(_, data) return "ok", data end)
end

local ARRAY = setmetatable({}, { __metatable = "space.array" })
local NULL = setmetatable({}, { __name = "null" }) -- what the fake space calls null: a value, not nil

describe("event", function()
  local event = load_event()

  it("refuses data that is not a JSON object before any field", function()
    local h = echo(event, { { "room", "room" } })
    for _, data in ipairs({ "r", 5, true, setmetatable({ room = "r" }, ARRAY), NULL }) do
      assert.are.same({ nil, "invalid_payload", "data must be a JSON object" }, { h(conn_in(), data) })
    end
    assert.are.same({ nil, "invalid_payload", "data must be a JSON object" }, { h(conn_in(), nil) })
  end)

  it("gives the body data itself, with the defaults of absent fields, other keys left alone", function()
    local h = echo(event, {
      { "room", "room" },
      { "limit", "integer", optional = true, default = 50 },
      { "note", "string", optional = true },
    })
    local data = { room = "r", extra = { 1 } }
    local ev, got = h(conn_in(), data)
    assert.are.equal("ok", ev)
    assert.are.equal(data, got)
    assert.are.same({ room = "r", limit = 50, extra = { 1 } }, got)
    assert.are.same({ "ok", { room = "r", limit = 3, note = "n" } }, { h(conn_in(), { room = "r", limit = 3, note = "n" }) })
  end)

  describe("a field of a schema type", function()
    for _, case in ipairs({
      { "string", "x", 5, "'f' must be a string" },
      { "number", 1.5, "1", "'f' must be a number" },
      { "integer", 2, 2.5, "'f' must be an integer" },
      { "boolean", false, 0, "'f' must be a boolean" },
      { "array", setmetatable({ 1 }, ARRAY), "x", "'f' must be an array" },
      { "record", { a = 1 }, 1, "'f' must be an object", { fields = { a = { type = "integer" } } } },
      { { "string", "number" }, 7, {}, "'f' must be a string or a number" },
    }) do
      local t, good, bad, message = case[1], case[2], case[3], case[4]
      local name = type(t) == "table" and table.concat(t, "|") or t
      it(name .. ": passes its type, refuses another type, null and absence with invalid_payload", function()
        local decl = { "f", t }
        for k, v in pairs(case[5] or {}) do decl[k] = v end
        local h = echo(event, { decl })
        local ev, got = h(conn_in(), { f = good })
        assert.are.equal("ok", ev)
        assert.are.same(good, got.f)
        -- (the server's null is a light userdata, no table: it fails "array" and "record" too)
        local null = NULL
        if t == "array" or t == "record" then null = false end
        for _, data in ipairs({ { f = bad }, { f = null }, {} }) do
          assert.are.same({ nil, "invalid_payload", message }, { h(conn_in(), data) })
        end
      end)
    end

    it("optional: absent passes, null and another type do not", function()
      local h = echo(event, { { "id", { "string", "number" }, optional = true } })
      assert.are.same({ "ok", {} }, { h(conn_in(), {}) })
      assert.are.same({ nil, "invalid_payload", "'id' must be a string or a number" }, { h(conn_in(), { id = NULL }) })
      assert.are.same({ nil, "invalid_payload", "'id' must be a string or a number" }, { h(conn_in(), { id = true }) })
    end)

    it("out of its bounds: the field's code and message, else invalid_payload with the schema's words", function()
      local h = echo(event, {
        { "limit", "integer", min = 1, max = 200, code = "invalid_limit", message = "limit is 1 to 200" },
        { "mode", "string", one_of = { "a", "b" } },
        { "tag", "string", pattern = "^#" },
      })
      local ok = { limit = 5, mode = "a", tag = "#t" }
      assert.are.equal("ok", (h(conn_in(), ok)))
      local function with(k, v)
        local d = {}
        for key, x in pairs(ok) do d[key] = x end
        d[k] = v
        return d
      end
      assert.are.same({ nil, "invalid_limit", "limit is 1 to 200" }, { h(conn_in(), with("limit", 0)) })
      assert.are.same({ nil, "invalid_limit", "limit is 1 to 200" }, { h(conn_in(), with("limit", 201)) })
      assert.are.same({ nil, "invalid_payload", "'limit' must be an integer" }, { h(conn_in(), with("limit", 1.5)) })
      assert.are.same({ nil, "invalid_payload", 'mode must be one of "a", "b", not "c"' }, { h(conn_in(), with("mode", "c")) })
      assert.are.same({ nil, "invalid_payload", 'tag must match ^#, not "t"' }, { h(conn_in(), with("tag", "t")) })
    end)

    it("inside a field: invalid_payload with the schema's words naming the path", function()
      local h = echo(event, { { "ids", "array", elements = { type = "string" } } })
      assert.are.same({ nil, "invalid_payload", "ids[2] must be a string, not 5" },
        { h(conn_in(), { ids = setmetatable({ "a", 5 }, ARRAY) }) })
    end)
  end)

  describe("a field of type any", function()
    it("must be present, whatever it is (null included)", function()
      local h = echo(event, { { "data", "any" } })
      for _, v in ipairs({ "text", 5, {}, NULL, false }) do
        assert.are.equal("ok", (h(conn_in(), { data = v })))
      end
      assert.are.same({ nil, "invalid_payload", "'data' is missing" }, { h(conn_in(), {}) })
    end)
  end)

  describe("a field of kind room", function()
    local ROOM_MESSAGE = "room names have 1 to 64 characters: letters, digits, _ - . :"
    local h = echo(event, { { "room", "room" } })

    it("accepts letters, digits and _ - . : up to rules.room.max_length", function()
      for _, room in ipairs({ "a-b_c.d:9", "Az09_-.:", ("x"):rep(64), "r" }) do
        assert.are.same({ "ok", { room = room } }, { h(conn_in(), { room = room }) })
      end
    end)

    it("refuses other names with invalid_room", function()
      for _, room in ipairs({ "", ("x"):rep(65), "a b", "é", "a/b", "a\0b", "a\n" }) do
        assert.are.same({ nil, "invalid_room", ROOM_MESSAGE }, { h(conn_in(), { room = room }) })
      end
    end)

    it("refuses a room that is not a string with invalid_payload", function()
      for _, data in ipairs({ {}, { room = 5 }, { room = NULL }, { room = {} } }) do
        assert.are.same({ nil, "invalid_payload", "'room' must be a string" }, { h(conn_in(), data) })
      end
    end)

    it("follows the rules' max_length", function()
      local short = load_event(function(r) r.room.max_length = 3 end)
      local hs = echo(short, { { "room", "room" } })
      assert.are.equal("ok", (hs(conn_in(), { room = "abc" })))
      assert.are.same({ nil, "invalid_room", "room names have 1 to 3 characters: letters, digits, _ - . :" },
        { hs(conn_in(), { room = "abcd" }) })
    end)
  end)

  describe("in_room", function()
    local h = echo(event, { { "room", "room" }, { "text", "string" }, in_room = true })

    it("answers not_in_room naming the room, after every field", function()
      assert.are.same({ nil, "not_in_room", "you are not in room r" }, { h(conn_in("s"), { room = "r", text = "x" }) })
      assert.are.same({ nil, "invalid_payload", "'text' must be a string" }, { h(conn_in("s"), { room = "r" }) })
      assert.are.same({ "ok", { room = "r", text = "x" } }, { h(conn_in("r"), { room = "r", text = "x" }) })
    end)
  end)

  it("checks in the declared order: the first failing field answers", function()
    local h = echo(event, {
      { "room", "room" },
      { "text", "string" },
      { "client_msg_id", { "string", "number" }, optional = true },
      in_room = true,
    })
    local c = conn_in()
    assert.are.same({ nil, "invalid_payload", "'room' must be a string" }, { h(c, { text = 1, client_msg_id = {} }) })
    assert.are.same({ nil, "invalid_room", "room names have 1 to 64 characters: letters, digits, _ - . :" },
      { h(c, { room = "a b", client_msg_id = {} }) })
    assert.are.same({ nil, "invalid_payload", "'text' must be a string" }, { h(c, { room = "r", client_msg_id = {} }) })
    assert.are.same({ nil, "invalid_payload", "'client_msg_id' must be a string or a number" },
      { h(c, { room = "r", text = "x", client_msg_id = {} }) })
    -- the other way round: a declaration's order, not the names', decides
    local h2 = echo(event, { { "b", "string" }, { "a", "string" } })
    assert.are.same({ nil, "invalid_payload", "'b' must be a string" }, { h2(c, {}) })
  end)

  describe("ev", function()
    it("is passed to a body declared with ev = true, and the handler takes three parameters", function()
      local seen
      local h = event({ { "room", "room" }, ev = true }, function(_, _, ev) seen = ev end)
      assert.are.equal(3, debug.getinfo(h, "u").nparams)
      local ev = { event = "x" }
      h(conn_in(), { room = "r" }, ev)
      assert.are.equal(ev, seen)
    end)

    it("is not built for the others: the handler takes two, and a body using it is told why", function()
      local h = event({ { "room", "room" } }, function(_, _, ev) return ev.event end)
      local info = debug.getinfo(h, "u")
      assert.are.equal(2, info.nparams)
      assert.is_false(info.isvararg)
      local ok, err = pcall(h, conn_in(), { room = "r" })
      assert.is_false(ok)
      assert.matches("declared without ev = true", err)
    end)
  end)

  it("hands the body's answer back whole", function()
    local h = event({ { "room", "room" } }, function() return nil, "room_full", "full", "extra" end)
    assert.are.same({ nil, "room_full", "full", "extra" }, { h(conn_in(), { room = "r" }) })
    h = event({}, function() end)
    assert.are.equal(0, select("#", h(conn_in(), {})))
  end)

  it("refuses a declaration it cannot check, at the declaring line", function()
    for _, case in ipairs({
      { { { "room", "room" } }, nil, "a table of fields and a function" },
      { { { "room", "room" }, in_rom = true }, echo, "unknown option 'in_rom'" },
      { { { "room", "rooms" } }, echo, "field 'room' has an unknown type rooms" },
      { { { "x", { "string", "text" } } }, echo, "field 'x' has an unknown type" },
      { { { "x" } }, echo, "field 'x' has an unknown type nil" },
      { { { "x", "string", optinal = true } }, echo, "field 'x' has an unknown option 'optinal'" },
      { { { "x", "string" }, { "x", "number" } }, echo, "field 'x' is declared twice" },
      { { { 5, "string" } }, echo, "a field needs a name" },
      { { "room" }, echo, "fields are a list of" },
      { { { "text", "string" }, in_room = true }, echo, "in_room needs a field" },
    }) do
      local body = case[2] and function() end
      local ok, err = pcall(function() local h = event(case[1], body) return h end)
      assert.is_false(ok)
      assert.matches(case[3], err, 1, true)
      assert.matches("event_spec%.lua:%d+:", err)
    end
  end)

  it("names a refused declaration by its fields, for the usual `return event(...)` leaves no line", function()
    local ok, err = pcall(function() return event({ { "room", "room" }, { "text", "strng" } }, function() end) end)
    assert.is_false(ok)
    assert.are.equal("event { room, text }: field 'text' has an unknown type strng", err)
  end)
end)
