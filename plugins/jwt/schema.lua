-- The config of the jwt plugin: the policy applied to verified tokens.
return {
  fields = {
    required_role = {
      type = "string",
      description = "when set, the token's role claim must hold this role",
    },
    role_claim = {
      type = "string", default = "roles",
      description = "the claim holding the roles: a string or a list of strings",
    },
    banned_users = {
      type = "array", elements = { type = "string" }, default = {},
      description = "user ids (the sub claim) refused whatever their token",
    },
    name_claims = {
      type = "array", elements = { type = "string" }, default = { "name", "preferred_username" },
      description = "claims tried in order for the display name; the sub when none is there",
    },
  },
}
