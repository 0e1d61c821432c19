-- The generation's name: timers.test.js edits it and reloads.
return "v1"
