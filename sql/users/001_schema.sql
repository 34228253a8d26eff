-- The users schema: owned by backends/users and read by nobody else.
comment on schema users is 'accounts of people, credentials, sessions, roles, 2FA, blocking, audit';
