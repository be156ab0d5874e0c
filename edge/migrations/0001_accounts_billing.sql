-- Accounts, API keys, client tokens, the credit ledger, usage, and customer webhooks.
-- Times are unix milliseconds. The per-account Durable Object (AccountObject) is the source of truth
-- for balances; it appends every ledger entry here, so SUM(ledger.amount) per account == its balance.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  webhook_secret TEXT NOT NULL,
  -- Request limit per key and per account over rate_limit_period_s; NULL = the platform default.
  rate_limit INTEGER,
  rate_limit_period_s INTEGER,
  created_at INTEGER NOT NULL
);

-- Only a SHA-256 of the secret is stored, plus a visible prefix to recognise it.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  name TEXT NOT NULL DEFAULT '',
  prefix TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Short-lived browser tokens minted by an account's server; spend is tracked by the account's object.
CREATE TABLE client_tokens (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  key_id TEXT NOT NULL REFERENCES api_keys (id),
  token_hash TEXT NOT NULL UNIQUE,
  origin TEXT NOT NULL,
  max_spend INTEGER NOT NULL,
  max_generations INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

-- Append-only: amounts are signed changes to the available balance
-- (grant +, reserve -, capture + (reserved - charged), release +, adjust +/-).
CREATE TABLE ledger (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('grant', 'reserve', 'capture', 'release', 'adjust')),
  amount INTEGER NOT NULL,
  generation_id TEXT,
  idempotency_key TEXT NOT NULL,
  memo TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (account_id, idempotency_key),
  UNIQUE (account_id, seq)
);
CREATE INDEX ledger_generation ON ledger (generation_id);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
  SELECT RAISE(ABORT, 'the ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
  SELECT RAISE(ABORT, 'the ledger is append-only');
END;

-- One row per captured (charged) generation.
CREATE TABLE usage_records (
  generation_id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  key_id TEXT,
  credits INTEGER NOT NULL,
  steps INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  num_images INTEGER NOT NULL,
  control_units INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX usage_account_time ON usage_records (account_id, created_at);

CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  disabled_at INTEGER
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id);

CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  generation_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  url TEXT NOT NULL,
  endpoint_id TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_status_code INTEGER,
  last_error TEXT,
  next_attempt_at INTEGER,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_account ON webhook_deliveries (account_id, created_at);

CREATE TABLE webhook_attempts (
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);
