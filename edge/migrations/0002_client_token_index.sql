-- Counting an account's unexpired client tokens (the cap on how many it may hold) reads this index.
CREATE INDEX client_tokens_account ON client_tokens (account_id, expires_at);
