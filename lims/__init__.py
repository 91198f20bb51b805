"""Labs, people and roles, and the mechanisms every app shares (permissions, errors, env helpers)."""
