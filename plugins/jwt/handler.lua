-- jwt: what a verified token means. The server checks the signature, the
-- algorithm, exp, nbf, iss and aud in C; this plugin turns the claims into
-- the user and applies the operator's checks. Runs only when a JWT key is
-- configured (in development mode users name themselves).
local Jwt = { VERSION = "1.0.0", PRIORITY = 2000 }

local function has_role(claim, role)
  if claim == role then return true end
  if type(claim) == "table" then
    for _, r in ipairs(claim) do
      if r == role then return true end
    end
  end
  return false
end

function Jwt:on_authenticate(conf, _, claims)
  for _, banned in ipairs(conf.banned_users) do
    if claims.sub == banned then return nil, "banned", "this user may not connect" end
  end
  if conf.required_role and not has_role(claims[conf.role_claim], conf.required_role) then
    return nil, "missing_role", ("the token lacks the role %s"):format(conf.required_role)
  end
  local name
  for _, claim in ipairs(conf.name_claims) do
    if type(claims[claim]) == "string" and #claims[claim] > 0 then
      name = claims[claim]
      break
    end
  end
  return { id = claims.sub, name = name or claims.sub }
end

return Jwt
