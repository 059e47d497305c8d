"""Single sign-on: identity providers, OIDC and LDAP sign-in."""
