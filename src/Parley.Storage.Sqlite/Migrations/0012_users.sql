-- Users who log in (docs/users.md): username unique (stored lower-case), roles as a JSON array, the password as a salted
-- PBKDF2 hash; credential_version goes up when the password or the roles change, ending the tokens issued before.
CREATE TABLE IF NOT EXISTS users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    username           TEXT NOT NULL UNIQUE,
    email              TEXT,
    roles              TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    date_created       INTEGER NOT NULL,
    date_modified      INTEGER NOT NULL,
    credential_version INTEGER NOT NULL DEFAULT 0
);

-- Authorization codes (RFC 6749 §4.1) by their SHA-256: single use (redeemed_at), bound to client, redirect URI, PKCE challenge.
CREATE TABLE IF NOT EXISTS authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    expires_at     INTEGER NOT NULL,
    user_version   INTEGER NOT NULL,
    redeemed_at    INTEGER
);
CREATE INDEX IF NOT EXISTS authorization_codes_by_expiry ON authorization_codes (expires_at);

-- OAuth clients get the platform's grant type and registered redirect URIs; existing clients stay client credentials.
ALTER TABLE oauth_clients ADD COLUMN authorized_grant_type TEXT NOT NULL DEFAULT 'CLIENT-CREDENTIALS';
ALTER TABLE oauth_clients ADD COLUMN redirect_uris TEXT;

-- A termination made with a user's token names the user beside the client.
ALTER TABLE termination_audit ADD COLUMN user_id TEXT;
ALTER TABLE termination_audit ADD COLUMN user_name TEXT;
