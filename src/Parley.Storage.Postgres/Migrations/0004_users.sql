-- Users who log in (docs/users.md): username unique (stored lower-case), roles as a JSON array, the password as a salted
-- PBKDF2 hash; credential_version goes up when the password or the roles change, ending the tokens issued before.
CREATE TABLE IF NOT EXISTS users (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    username           text NOT NULL UNIQUE,
    email              text,
    roles              text NOT NULL,
    password_hash      text NOT NULL,
    date_created       bigint NOT NULL,
    date_modified      bigint NOT NULL,
    credential_version bigint NOT NULL DEFAULT 0
);

-- Authorization codes (RFC 6749 §4.1) by their SHA-256: single use (redeemed_at), bound to client, redirect URI, PKCE challenge.
CREATE TABLE IF NOT EXISTS authorization_codes (
    code_hash      text PRIMARY KEY,
    client_id      text NOT NULL,
    user_id        text NOT NULL,
    redirect_uri   text NOT NULL,
    code_challenge text,
    expires_at     bigint NOT NULL,
    user_version   bigint NOT NULL,
    redeemed_at    bigint
);
CREATE INDEX IF NOT EXISTS authorization_codes_by_expiry ON authorization_codes (expires_at);

-- OAuth clients get the platform's grant type and registered redirect URIs; existing clients stay client credentials.
ALTER TABLE oauth_clients ADD COLUMN IF NOT EXISTS authorized_grant_type text NOT NULL DEFAULT 'CLIENT-CREDENTIALS';
ALTER TABLE oauth_clients ADD COLUMN IF NOT EXISTS redirect_uris text;

-- A termination made with a user's token names the user beside the client.
ALTER TABLE termination_audit ADD COLUMN IF NOT EXISTS user_id text;
ALTER TABLE termination_audit ADD COLUMN IF NOT EXISTS user_name text;
