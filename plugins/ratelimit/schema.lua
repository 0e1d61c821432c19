-- The config of the ratelimit plugin, checked when the scripts load.
return {
  fields = {
    events = {
      type = "array", elements = { type = "string" }, default = { "send_message", "send_file" },
      description = "the events that take a token",
    },
    rules = {
      type = "string", default = "rules",
      description = "the scripts' rules module, whose rate.per_second and rate.burst apply",
    },
  },
}
