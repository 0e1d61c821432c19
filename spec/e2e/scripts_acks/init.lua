-- The scripts of the acknowledgement tests (acks.test.js, test_python_acks.py):
-- handlers that answer a client's ack in each way the server allows.
local function on_connect(conn)
  conn:emit("connected", { sid = conn:id() })
end

-- Asks the client a question; its ack's answer answers the event ev later.
local function ask(conn, data, ev)
  conn:emit("question", data, function(answer) conn:reply(ev, "answered", answer) end)
end

return {
  namespaces = {
    ["/"] = {
      on_connect = on_connect,
      events = {
        -- Answers with its data (an answer the server always gave).
        echo = function(_, data) return "echo", data end,
        -- Returns nothing: the ack is answered at once, with no data.
        nothing = function() end,
        -- Returns what is no answer: the same.
        no_answer = function() return 42 end,
        -- Takes ev and returns nothing: the event is kept, answered later.
        later = function(conn, data, ev) ask(conn, data, ev) end,
        -- Answers now, and again later from the callback: the ack goes once.
        now_and_later = function(conn, data, ev)
          ask(conn, data, ev)
          return "now", data
        end,
        -- Takes ev, returns nothing and keeps nothing: the event is kept,
        -- then collected unanswered, and its ack goes with no data.
        dropped = function(_, _, _) end,
        -- Fails: a failed call ends with a full collection of the state.
        fail = function() error("failing to collect") end,
        -- Answers the ack, then fails: the error event, not a second ack.
        ack_then_fail = function(conn, _, ev)
          conn:ack(ev, "early")
          error("failing after the ack")
        end,
      },
    },
  },
}
