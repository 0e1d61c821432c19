-- join_room {room} -> joined_room {room, users, count};
-- the others get user_joined_room when this user was not in the room yet.
local space = require "space"
local rules = require "rules"
local validate = require "app.validate"

return function(conn, data)
  local ok, code, msg = validate.object(data)
  if not ok then return nil, code, msg end
  local room
  room, code, msg = validate.room(data)
  if not room then return nil, code, msg end

  if not conn:in_room(room) then
    local users = space.room_size(room)
    if users >= rules.room.max_users and not space.room_has_user(room, conn:user().id) then
      return nil, "room_full", ("room %s has %d users, the most it takes"):format(room, users)
    end
    local _, user_is_new = conn:join(room)
    if user_is_new then
      conn:to(room, "user_joined_room", { room = room, user = conn:user() })
    end
  end
  local users, count = space.room_users(room)
  return "joined_room", { room = room, users = users, count = count }
end
