-- The chat handlers against a stand-in `space` (fake_space.lua): who gets
-- what, and every error code, one handler call at a time. The same rows are
-- checked end to end against the real server in spec/e2e.
package.path = "spec/lua/?.lua;" .. package.path
local fake = require "fake_space"

-- Asserts that a handler refused with code.
local function refused(code, event, got_code)
  assert.is_nil(event)
  assert.are.equal(code, got_code)
end

local function setup(rules_patch)
  local space = fake.new()
  local rules = dofile("scripts/rules.lua")
  if rules_patch then rules_patch(rules) end
  local app = fake.load_app("scripts", space, rules)
  local ns = app.namespaces["/"]
  local function call(conn, event, data)
    return ns.events[event](conn, data, { event = event, args = { data, n = 1 } })
  end
  return space, ns, call
end

describe("authenticate (development mode)", function()
  it("derives the user id from the name, so the same name is the same user", function()
    local space, ns = setup()
    local a = ns.authenticate(space.connect("s1"), { name = "alice" })
    local b = ns.authenticate(space.connect("s2"), { name = "alice" })
    assert.are.same({ id = "dev:alice", name = "alice" }, a)
    assert.are.same(a, b)
  end)

  it("makes each nameless connection its own guest", function()
    local space, ns = setup()
    local a = ns.authenticate(space.connect("AAAAAAAAAA1"), {})
    local b = ns.authenticate(space.connect("BBBBBBBBBB2"), { name = 42 })
    assert.are_not.equal(a.id, b.id)
    assert.are.equal("guest-AAAAAA", a.name)
  end)
end)

describe("join_room", function()
  it("answers joined_room with the users and tells the others once per user", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    local bob2 = space.connect("b2", { id = "u2", name = "bob" })
    assert.are.same({ "joined_room", { room = "r", users = { { id = "u1", name = "alice" } }, count = 1 } },
      { call(alice, "join_room", { room = "r" }) })
    call(bob, "join_room", { room = "r" })
    assert.are.same({ { room = "r", user = { id = "u2", name = "bob" } } }, alice:take("user_joined_room"))
    local event, data = call(bob2, "join_room", { room = "r" })
    assert.are.equal("joined_room", event)
    assert.are.equal(2, data.count)
    assert.are.same({}, alice:take("user_joined_room"))
  end)

  it("answers joined_room again and tells nobody when already in", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r" })
    call(bob, "join_room", { room = "r" })
    alice:take("user_joined_room")
    assert.are.equal("joined_room", (call(bob, "join_room", { room = "r" })))
    assert.are.same({}, alice:take("user_joined_room"))
  end)

  it("refuses a full room with room_full, but lets a user already in add a tab", function()
    local space, _, call = setup(function(r) r.room.max_users = 1 end)
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local alice2 = space.connect("a2", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r" })
    refused("room_full", call(bob, "join_room", { room = "r" }))
    assert.are.equal("joined_room", (call(alice2, "join_room", { room = "r" })))
  end)

  for _, case in ipairs({
    { "a string", "r", "invalid_payload" },
    { "an array", setmetatable({ "r" }, {}), "invalid_payload" },
    { "no room", {}, "invalid_payload" },
    { "a numeric room", { room = 5 }, "invalid_payload" },
    { "an empty room", { room = "" }, "invalid_room" },
    { "a room with a space", { room = "a b" }, "invalid_room" },
    { "a room of 65 characters", { room = ("x"):rep(65) }, "invalid_room" },
    { "a room with a slash", { room = "a/b" }, "invalid_room" },
  }) do
    it("refuses " .. case[1] .. " with " .. case[3], function()
      local space, _, call = setup()
      local alice = space.connect("a1", { id = "u1", name = "alice" })
      local event, code = call(alice, "join_room", case[2])
      assert.is_nil(event)
      assert.are.equal(case[3], code)
    end)
  end

  it("accepts every allowed character and 64 of them", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    assert.are.equal("joined_room", (call(alice, "join_room", { room = "Az09_-.:" })))
    assert.are.equal("joined_room", (call(alice, "join_room", { room = ("x"):rep(64) })))
  end)
end)

describe("leave_room", function()
  it("answers not_in_room for a room one is not in", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    refused("not_in_room", call(alice, "leave_room", { room = "r" }))
  end)

  it("tells the others only when the user's last connection left", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    local bob2 = space.connect("b2", { id = "u2", name = "bob" })
    for _, c in ipairs({ alice, bob, bob2 }) do call(c, "join_room", { room = "r" }) end
    assert.are.same({ "left_room", { room = "r" } }, { call(bob, "leave_room", { room = "r" }) })
    assert.are.same({}, alice:take("user_left_room"))
    call(bob2, "leave_room", { room = "r" })
    assert.are.same({ { room = "r", user = { id = "u2", name = "bob" } } }, alice:take("user_left_room"))
  end)
end)

describe("send_message", function()
  local function room_of_two()
    local space, ns, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r" })
    call(bob, "join_room", { room = "r" })
    return space, call, alice, bob, ns
  end

  it("answers message_sent and sends new_message to the others, trimmed", function()
    local space, call, alice, bob = room_of_two()
    local event, data = call(alice, "send_message", { room = "r", text = "  hello \n", client_msg_id = "c1" })
    assert.are.equal("message_sent", event)
    assert.are.same({ id = data.id, room = "r", timestamp = space.now(), client_msg_id = "c1" }, data)
    local got = bob:take("new_message")
    assert.are.same({ { id = data.id, room = "r", user = { id = "u1", name = "alice" }, text = "hello",
      timestamp = space.now(), offset = got[1] and got[1].offset } }, got)
    assert.are.equal("string", type(got[1].offset))
    assert.are.same({}, alice:take("new_message"))
  end)

  it("sends client_msg_id as null when the client gave none", function()
    local space, call, alice = room_of_two()
    local _, data = call(alice, "send_message", { room = "r", text = "x" })
    assert.are.equal(space.null, data.client_msg_id)
  end)

  it("gives ids that sort in acceptance order", function()
    local _, call, alice = room_of_two()
    local _, first = call(alice, "send_message", { room = "r", text = "1" })
    local _, second = call(alice, "send_message", { room = "r", text = "2" })
    assert.is_true(first.id < second.id)
  end)

  it("counts code points, not bytes: 4000 accented letters pass, 4001 do not", function()
    local _, call, alice = room_of_two()
    assert.are.equal("message_sent", (call(alice, "send_message", { room = "r", text = ("é"):rep(4000) })))
    local event, code = call(alice, "send_message", { room = "r", text = ("é"):rep(4001) })
    assert.is_nil(event)
    assert.are.equal("message_too_long", code)
  end)

  for _, case in ipairs({
    { "whitespace only", { room = "r", text = " \t\n " }, "empty_message" },
    { "an empty text", { room = "r", text = "" }, "empty_message" },
    { "no text", { room = "r" }, "invalid_payload" },
    { "a numeric text", { room = "r", text = 5 }, "invalid_payload" },
    { "a table as client_msg_id", { room = "r", text = "x", client_msg_id = {} }, "invalid_payload" },
    { "a room one is not in", { room = "elsewhere", text = "x" }, "not_in_room" },
    { "a bad room name", { room = "a b", text = "x" }, "invalid_room" },
  }) do
    it("refuses " .. case[1] .. " with " .. case[3], function()
      local _, call, alice, bob = room_of_two()
      local event, code = call(alice, "send_message", case[2])
      assert.is_nil(event)
      assert.are.equal(case[3], code)
      assert.are.same({}, bob:take("new_message"))
    end)
  end

end)

describe("get_room_users", function()
  it("lists each user once with the count, for members and others alike", function()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local alice2 = space.connect("a2", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r" })
    call(alice2, "join_room", { room = "r" })
    assert.are.same({ "room_users", { room = "r", users = { { id = "u1", name = "alice" } }, count = 1 } },
      { call(bob, "get_room_users", { room = "r" }) })
  end)

  it("answers an empty list for an empty room", function()
    local space, _, call = setup()
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    local event, data = call(bob, "get_room_users", { room = "nobody" })
    assert.are.equal("room_users", event)
    assert.are.same({}, data.users)
    assert.are.equal(0, data.count)
  end)
end)

describe("history", function()
  local function two()
    local space, _, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r" })
    call(bob, "join_room", { room = "r" })
    return space, call, alice, bob
  end

  it("get_history answers room_history later, oldest first, with has_more and before", function()
    local space, call, alice, bob = two()
    for i = 1, 5 do call(alice, "send_message", { room = "r", text = "m" .. i }) end
    assert.is_nil((call(bob, "get_history", { room = "r", limit = 2 })))
    assert.are.same({}, bob:take("room_history"))
    space.run_later()
    local page = bob:take("room_history")[1]
    assert.are.same({ "m4", "m5" }, { page.messages[1].text, page.messages[2].text })
    assert.is_true(page.has_more)
    call(bob, "get_history", { room = "r", before = page.messages[1].offset })
    space.run_later()
    local older = bob:take("room_history")[1]
    assert.are.equal(3, #older.messages)
    assert.is_false(older.has_more)
  end)

  it("get_history refuses non-members and bad limits or offsets", function()
    local space, call = two()
    local carol = space.connect("c1", { id = "u3", name = "carol" })
    refused("not_in_room", call(carol, "get_history", { room = "r" }))
    local alice = space.connect("a2", { id = "u1", name = "alice" })
    call(alice, "join_room", { room = "r" })
    for _, bad in ipairs({ { limit = 0 }, { limit = 201 }, { limit = 1.5 }, { before = "xyz" },
                           { before = "ABCDEF0123456789" } }) do
      bad.room = "r"
      refused("invalid_payload", call(alice, "get_history", bad))
    end
  end)

  it("join_room with history: N answers later with the last N and the latest offset", function()
    local space, call, alice = two()
    for i = 1, 3 do call(alice, "send_message", { room = "r", text = "m" .. i }) end
    local carol = space.connect("c1", { id = "u3", name = "carol" })
    assert.is_nil((call(carol, "join_room", { room = "r", history = 2 })))
    space.run_later()
    local joined = carol:take("joined_room")[1]
    assert.are.same({ "m2", "m3" }, { joined.history[1].text, joined.history[2].text })
    assert.are.equal(joined.history[2].offset, joined.offset)
    refused("invalid_payload", call(carol, "join_room", { room = "r", history = 201 }))
  end)

  it("join_room with since: joined_room, then the messages after since, and the hold released", function()
    local space, call, alice = two()
    for i = 1, 3 do call(alice, "send_message", { room = "r", text = "m" .. i }) end
    local carol = space.connect("c1", { id = "u3", name = "carol" })
    call(carol, "join_room", { room = "r", history = 3 })
    space.run_later()
    local first = carol:take("joined_room")[1].history[1].offset
    local dave = space.connect("d1", { id = "u4", name = "dave" })
    call(dave, "join_room", { room = "r", since = first })
    assert.are.equal(1, dave.holds)
    space.run_later()
    assert.are.equal(0, dave.holds)
    assert.are.equal("joined_room", dave.inbox[1].event)
    assert.are.same({ "m2", "m3" }, { dave.inbox[2].data.text, dave.inbox[3].data.text })
    refused("invalid_payload", call(dave, "join_room", { room = "r", since = first, history = 1 }))
  end)

  it("join_room with since replays past one page (1000 messages), in order, then releases the hold", function()
    local space, call, alice = two()
    local since = space.history_append("r", "new_message", { text = "before" })
    for i = 1, 1003 do call(alice, "send_message", { room = "r", text = "m" .. i }) end
    local erin = space.connect("e1", { id = "u5", name = "erin" })
    call(erin, "join_room", { room = "r", since = since })
    space.run_later()
    assert.are.equal(0, erin.holds)
    local got = erin:take("new_message")
    assert.are.equal(1003, #got)
    for i = 1, 1003 do assert.are.equal("m" .. i, got[i].text) end
  end)
end)

describe("on_disconnect", function()
  it("leaves every room and tells the others where the user's last connection left", function()
    local space, ns, call = setup()
    local alice = space.connect("a1", { id = "u1", name = "alice" })
    local bob = space.connect("b1", { id = "u2", name = "bob" })
    call(alice, "join_room", { room = "r1" })
    call(alice, "join_room", { room = "r2" })
    call(bob, "join_room", { room = "r1" })
    ns.on_disconnect(alice, "transport close")
    assert.are.same({ { room = "r1", user = { id = "u1", name = "alice" } } }, bob:take("user_left_room"))
    assert.are.same({}, alice:rooms())
  end)
end)

-- The words clients read, per handler, for data refused before the handler's
-- own logic (declared fields, app/event.lua): the same as the handlers said
-- when each checked its data by hand.
describe("refusals, word for word", function()
  local ROOM = "room names have 1 to 64 characters: letters, digits, _ - . :"
  local NOT_OBJECT = "data must be a JSON object"
  local FILE = { room = "r", name = "a.txt", type = "text/plain", data = "aGk=" }
  local function file(patch)
    local d = {}
    for k, v in pairs(FILE) do d[k] = v end
    for k, v in pairs(patch) do d[k] = v end
    return d
  end
  for _, case in ipairs({
    { "join_room", "r", "invalid_payload", NOT_OBJECT },
    { "join_room", nil, "invalid_payload", NOT_OBJECT },
    { "join_room", {}, "invalid_payload", "'room' must be a string" },
    { "join_room", { room = "a b" }, "invalid_room", ROOM },
    { "leave_room", setmetatable({ room = "r" }, {}), "invalid_payload", NOT_OBJECT },
    { "leave_room", { room = 1 }, "invalid_payload", "'room' must be a string" },
    { "leave_room", { room = "" }, "invalid_room", ROOM },
    { "leave_room", { room = "elsewhere" }, "not_in_room", "you are not in room elsewhere" },
    { "get_room_users", 5, "invalid_payload", NOT_OBJECT },
    { "get_room_users", { room = ("x"):rep(65) }, "invalid_room", ROOM },
    { "send_message", { room = 5, text = 5 }, "invalid_payload", "'room' must be a string" },
    { "send_message", { room = "a/b", text = 5 }, "invalid_room", ROOM },
    { "send_message", { room = "r", client_msg_id = {} }, "invalid_payload", "'text' must be a string" },
    { "send_message", { room = "r", text = "x", client_msg_id = true }, "invalid_payload",
      "'client_msg_id' must be a string or a number" },
    { "send_message", { room = "elsewhere", text = "x", client_msg_id = {} }, "invalid_payload",
      "'client_msg_id' must be a string or a number" },
    { "send_message", { room = "elsewhere", text = "" }, "not_in_room", "you are not in room elsewhere" },
    { "send_message", { room = "r", text = "  " }, "empty_message", "the message is empty" },
    { "send_file", "x", "invalid_payload", NOT_OBJECT },
    { "send_file", file({ room = false }), "invalid_payload", "'room' must be a string" },
    { "send_file", file({ room = "a b", name = 1 }), "invalid_room", ROOM },
    { "send_file", file({ name = 1, type = 1 }), "invalid_payload", "'name' must be a string" },
    { "send_file", file({ type = 1, data = false }), "invalid_payload", "'type' must be a string" },
    { "send_file", { room = "r", name = "a", type = "t" }, "invalid_payload", "'data' is missing" },
    { "send_file", file({ room = "elsewhere", data = 5 }), "not_in_room", "you are not in room elsewhere" },
    { "refresh_token", {}, "invalid_payload", "'token' must be a string" },
    { "refresh_token", "t", "invalid_payload", NOT_OBJECT },
  }) do
    it(("%s answers %s: %s"):format(case[1], case[3], case[4]), function()
      local space, _, call = setup()
      local alice = space.connect("a1", { id = "u1", name = "alice" })
      call(alice, "join_room", { room = "r" })
      assert.are.same({ nil, case[3], case[4] }, { call(alice, case[1], case[2]) })
    end)
  end
end)
