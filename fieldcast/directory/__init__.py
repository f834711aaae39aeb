"""The organisation's directory: people and teams provisioned by its identity provider over
SCIM 2.0 (RFC 7643, RFC 7644), as Okta and Microsoft Entra ID speak it.

- `tokens`: the organisation's SCIM bearer token (made, rotated and revoked by admins).
- `resources`: the SCIM resources served (User with the enterprise extension, Group) and the
  service provider's configuration, as scim2-models classes.
- `storage`: scim2-server's storage interface over the product's own tables (`users`,
  `teams`, `team_memberships`), writing through `fieldcast.accounts.services`, so that a
  provisioned person joins teams, takes a role and is deactivated exactly as through the API
  (the programs' rules fire on the same events).
- `filters`: SCIM filters as SQL, so searches page in the database.
"""
