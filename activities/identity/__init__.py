"""Identity: users, levels and permissions, principals, API keys, login sessions, orgs and teams."""
