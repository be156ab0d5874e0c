import { DurableObject } from 'cloudflare:workers';
import type { LedgerKind } from '@contour/shared/contracts';
import type { Bindings } from '../env.ts';
import { type RateDecision, takeToken } from '../ratelimit/bucket.ts';

/** How long an idempotent response is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/** An in-progress idempotent request older than this is considered abandoned (its isolate died). */
export const IDEMPOTENCY_ABANDONED_MS = 5 * 60_000;
/** Delay before retrying a failed D1 write of the ledger outbox. */
export const LEDGER_SYNC_RETRY_MS = 10_000;

/** Limits of a client token, checked when it reserves. */
export interface ClientTokenLimits {
  id: string;
  max_spend: number;
  max_generations: number;
}

/** What a generation reserves. */
export interface ReserveRequest {
  generation_id: string;
  amount: number;
  key_id: string | null;
  client_token: ClientTokenLimits | null;
}

/** Result of {@link AccountObject.reserve}. */
export type ReserveResult =
  | { ok: true; available: number }
  | { ok: false; reason: 'insufficient_credits'; available: number; shortfall: number }
  | { ok: false; reason: 'client_token_limit'; limit: 'max_spend' | 'max_generations'; remaining: number }
  | { ok: false; reason: 'already_released' };

/** The usage a capture records. */
export interface CapturedWork {
  credits: number;
  steps: number;
  width: number;
  height: number;
  num_images: number;
  control_units: number;
}

/** Outcome of a hold. */
export type HoldStatus = 'reserved' | 'captured' | 'released';

/** A stored response to replay for an idempotency key. */
export interface StoredResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Result of {@link AccountObject.idempotencyBegin}. */
export type IdempotencyBegin =
  | { state: 'proceed' }
  | { state: 'in_progress' }
  | { state: 'mismatch' }
  | { state: 'replay'; response: StoredResponse };

interface LedgerRow extends Record<string, SqlStorageValue> {
  seq: number;
  id: string;
  kind: string;
  amount: number;
  generation_id: string | null;
  idempotency_key: string;
  memo: string;
  created_at: number;
}

/**
 * One account's money, the source of truth for its balance: an append-only ledger in the object's own
 * SQLite (each entry also written to D1 through an outbox), holds per generation (reserved -> captured
 * xor released, each transition at most once), client-token spend, idempotency records and the
 * fallback rate-limit buckets. A Durable Object runs one request at a time between awaits and every
 * check-then-write below is synchronous, so two requests can never both spend the same credit.
 */
export class AccountObject extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        amount INTEGER NOT NULL, generation_id TEXT, idempotency_key TEXT NOT NULL UNIQUE,
        memo TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, synced INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS holds (
        generation_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL,
        key_id TEXT, client_token_id TEXT, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS usage_outbox (generation_id TEXT PRIMARY KEY, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS token_spend (
        token_id TEXT PRIMARY KEY, spent INTEGER NOT NULL, generations INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS idempotency (
        key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, response TEXT, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL);
    `);
  }

  private accountId(accountId: string): string {
    const stored = this.sql
      .exec<{ value: string }>("SELECT value FROM meta WHERE key = 'account_id'")
      .toArray();
    if (stored[0]) {
      if (stored[0].value !== accountId) throw new Error('account object addressed with another account id');
      return accountId;
    }
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('account_id', ?)", accountId);
    return accountId;
  }

  private available(): number {
    return this.sql.exec<{ total: number }>('SELECT COALESCE(SUM(amount), 0) AS total FROM ledger').one()
      .total;
  }

  private reservedTotal(): number {
    return this.sql
      .exec<{ total: number }>(
        "SELECT COALESCE(SUM(amount), 0) AS total FROM holds WHERE status = 'reserved'",
      )
      .one().total;
  }

  private append(
    kind: LedgerKind,
    amount: number,
    idempotencyKey: string,
    generationId: string | null,
    memo = '',
  ) {
    this.sql.exec(
      'INSERT INTO ledger (id, kind, amount, generation_id, idempotency_key, memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      `led_${crypto.randomUUID().replaceAll('-', '')}`,
      kind,
      amount,
      generationId,
      idempotencyKey,
      memo,
      Date.now(),
    );
  }

  /** Writes unsynced ledger entries and usage records to D1 (idempotent); on failure an alarm retries. */
  async sync(): Promise<void> {
    const accountId = this.sql
      .exec<{ value: string }>("SELECT value FROM meta WHERE key = 'account_id'")
      .toArray()[0]?.value;
    if (!accountId) return;
    const entries = this.sql.exec<LedgerRow>('SELECT * FROM ledger WHERE synced = 0 ORDER BY seq').toArray();
    const usage = this.sql
      .exec<{ generation_id: string; record: string }>('SELECT * FROM usage_outbox')
      .toArray();
    if (entries.length === 0 && usage.length === 0) return;
    try {
      const statements = entries.map((e) =>
        this.env.DB.prepare(
          `INSERT OR IGNORE INTO ledger (id, account_id, seq, kind, amount, generation_id, idempotency_key, memo, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).bind(
          e.id,
          accountId,
          e.seq,
          e.kind,
          e.amount,
          e.generation_id,
          e.idempotency_key,
          e.memo,
          e.created_at,
        ),
      );
      for (const row of usage) {
        const r = JSON.parse(row.record) as CapturedWork & { key_id: string | null; created_at: number };
        statements.push(
          this.env.DB.prepare(
            `INSERT OR IGNORE INTO usage_records (generation_id, account_id, key_id, credits, steps, width, height,
             num_images, control_units, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).bind(
            row.generation_id,
            accountId,
            r.key_id,
            r.credits,
            r.steps,
            r.width,
            r.height,
            r.num_images,
            r.control_units,
            r.created_at,
          ),
        );
      }
      await this.env.DB.batch(statements);
      for (const e of entries) this.sql.exec('UPDATE ledger SET synced = 1 WHERE seq = ?', e.seq);
      for (const row of usage)
        this.sql.exec('DELETE FROM usage_outbox WHERE generation_id = ?', row.generation_id);
    } catch (error) {
      console.error('ledger sync to D1 failed; retrying from the alarm', error);
      await this.ctx.storage.setAlarm(Date.now() + LEDGER_SYNC_RETRY_MS);
    }
  }

  /** Retries the D1 outbox. */
  override async alarm(): Promise<void> {
    await this.sync();
  }

  /** Adds (grant) or changes (adjust) credits; a repeated `idempotencyKey` changes nothing. */
  async credit(
    accountId: string,
    entry: { kind: 'grant' | 'adjust'; amount: number; idempotency_key: string; memo?: string },
  ): Promise<{ available: number; applied: boolean }> {
    this.accountId(accountId);
    const key = `${entry.kind}:${entry.idempotency_key}`;
    const exists = this.sql.exec('SELECT 1 FROM ledger WHERE idempotency_key = ?', key).toArray().length > 0;
    if (!exists) this.append(entry.kind, entry.amount, key, null, entry.memo ?? '');
    await this.sync();
    return { available: this.available(), applied: !exists };
  }

  /** Holds `amount` credits for a generation (idempotent per generation). */
  async reserve(accountId: string, request: ReserveRequest): Promise<ReserveResult> {
    this.accountId(accountId);
    const hold = this.sql
      .exec<{ status: HoldStatus }>('SELECT status FROM holds WHERE generation_id = ?', request.generation_id)
      .toArray()[0];
    if (hold) {
      return hold.status === 'released'
        ? { ok: false, reason: 'already_released' }
        : { ok: true, available: this.available() };
    }
    const available = this.available();
    if (available < request.amount) {
      return { ok: false, reason: 'insufficient_credits', available, shortfall: request.amount - available };
    }
    const token = request.client_token;
    if (token) {
      const spend = this.sql
        .exec<{ spent: number; generations: number }>(
          'SELECT spent, generations FROM token_spend WHERE token_id = ?',
          token.id,
        )
        .toArray()[0] ?? { spent: 0, generations: 0 };
      if (spend.generations + 1 > token.max_generations)
        return { ok: false, reason: 'client_token_limit', limit: 'max_generations', remaining: 0 };
      if (spend.spent + request.amount > token.max_spend)
        return {
          ok: false,
          reason: 'client_token_limit',
          limit: 'max_spend',
          remaining: token.max_spend - spend.spent,
        };
      this.sql.exec(
        `INSERT INTO token_spend (token_id, spent, generations) VALUES (?, ?, 1)
         ON CONFLICT (token_id) DO UPDATE SET spent = spent + excluded.spent, generations = generations + 1`,
        token.id,
        request.amount,
      );
    }
    this.sql.exec(
      "INSERT INTO holds (generation_id, amount, status, key_id, client_token_id, created_at) VALUES (?, ?, 'reserved', ?, ?, ?)",
      request.generation_id,
      request.amount,
      request.key_id,
      token?.id ?? null,
      Date.now(),
    );
    this.append('reserve', -request.amount, `reserve:${request.generation_id}`, request.generation_id);
    await this.sync();
    return { ok: true, available: this.available() };
  }

  /**
   * Charges a reserved generation `work.credits` (at most the hold; the rest goes back). Returns the
   * hold's final status: a hold already released stays released, so a generation is captured xor released.
   */
  async capture(
    accountId: string,
    generationId: string,
    work: CapturedWork,
  ): Promise<{ status: HoldStatus | 'none'; charged: number }> {
    this.accountId(accountId);
    const hold = this.sql
      .exec<{ amount: number; status: HoldStatus; key_id: string | null }>(
        'SELECT amount, status, key_id FROM holds WHERE generation_id = ?',
        generationId,
      )
      .toArray()[0];
    if (!hold) return { status: 'none', charged: 0 };
    if (hold.status !== 'reserved') {
      await this.sync();
      return { status: hold.status, charged: hold.status === 'captured' ? hold.amount : 0 };
    }
    const charged = Math.min(hold.amount, Math.max(0, work.credits));
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "UPDATE holds SET status = 'captured', amount = ? WHERE generation_id = ?",
        charged,
        generationId,
      );
      this.append('capture', hold.amount - charged, `capture:${generationId}`, generationId);
      this.sql.exec(
        'INSERT OR IGNORE INTO usage_outbox (generation_id, record) VALUES (?, ?)',
        generationId,
        JSON.stringify({ ...work, credits: charged, key_id: hold.key_id, created_at: Date.now() }),
      );
    });
    await this.sync();
    return { status: 'captured', charged };
  }

  /**
   * Returns a generation's hold. Without a hold (the reservation never landed) it leaves a tombstone so a
   * late reserve for the same generation is refused.
   */
  async release(accountId: string, generationId: string, reason = ''): Promise<{ status: HoldStatus }> {
    this.accountId(accountId);
    const hold = this.sql
      .exec<{ amount: number; status: HoldStatus; client_token_id: string | null }>(
        'SELECT amount, status, client_token_id FROM holds WHERE generation_id = ?',
        generationId,
      )
      .toArray()[0];
    if (!hold) {
      this.sql.exec(
        "INSERT INTO holds (generation_id, amount, status, created_at) VALUES (?, 0, 'released', ?)",
        generationId,
        Date.now(),
      );
      return { status: 'released' };
    }
    if (hold.status !== 'reserved') {
      await this.sync();
      return { status: hold.status };
    }
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("UPDATE holds SET status = 'released' WHERE generation_id = ?", generationId);
      this.append('release', hold.amount, `release:${generationId}`, generationId, reason);
      if (hold.client_token_id) {
        this.sql.exec(
          'UPDATE token_spend SET spent = spent - ?, generations = generations - 1 WHERE token_id = ?',
          hold.amount,
          hold.client_token_id,
        );
      }
    });
    await this.sync();
    return { status: 'released' };
  }

  /** Available credits (== the ledger sum) and credits held by unfinished generations. */
  async balance(): Promise<{ available: number; reserved: number }> {
    return { available: this.available(), reserved: this.reservedTotal() };
  }

  /** The status of a generation's hold (for tests and audits). */
  async holdStatus(generationId: string): Promise<HoldStatus | null> {
    return (
      this.sql
        .exec<{ status: HoldStatus }>('SELECT status FROM holds WHERE generation_id = ?', generationId)
        .toArray()[0]?.status ?? null
    );
  }

  /** Claims an idempotency key for a request with this fingerprint, or says why not. */
  async idempotencyBegin(key: string, fingerprint: string): Promise<IdempotencyBegin> {
    const now = Date.now();
    this.sql.exec('DELETE FROM idempotency WHERE created_at < ?', now - IDEMPOTENCY_TTL_MS);
    const row = this.sql
      .exec<{ fingerprint: string; response: string | null; created_at: number }>(
        'SELECT fingerprint, response, created_at FROM idempotency WHERE key = ?',
        key,
      )
      .toArray()[0];
    if (!row) {
      this.sql.exec(
        'INSERT INTO idempotency (key, fingerprint, created_at) VALUES (?, ?, ?)',
        key,
        fingerprint,
        now,
      );
      return { state: 'proceed' };
    }
    if (row.fingerprint !== fingerprint) return { state: 'mismatch' };
    if (row.response !== null)
      return { state: 'replay', response: JSON.parse(row.response) as StoredResponse };
    if (now - row.created_at > IDEMPOTENCY_ABANDONED_MS) {
      this.sql.exec('UPDATE idempotency SET created_at = ? WHERE key = ?', now, key);
      return { state: 'proceed' };
    }
    return { state: 'in_progress' };
  }

  /** Stores the response of a claimed key (replayed for 24 h), or frees the key when `response` is null. */
  async idempotencyFinish(key: string, response: StoredResponse | null): Promise<void> {
    if (response === null) this.sql.exec('DELETE FROM idempotency WHERE key = ? AND response IS NULL', key);
    else this.sql.exec('UPDATE idempotency SET response = ? WHERE key = ?', JSON.stringify(response), key);
  }

  /** The fallback rate limiter: takes a token from each named bucket; refused if any is empty. */
  async rateLimit(buckets: { name: string; limit: number; period_ms: number }[]): Promise<RateDecision> {
    const now = Date.now();
    let worst: RateDecision | null = null;
    const updates: [string, number, number][] = [];
    for (const spec of buckets) {
      const row = this.sql
        .exec<{ tokens: number; updated_ms: number }>(
          'SELECT tokens, updated_ms FROM buckets WHERE name = ?',
          spec.name,
        )
        .toArray()[0];
      const { bucket, decision } = takeToken(
        row ? { tokens: row.tokens, updatedMs: row.updated_ms } : null,
        spec.limit,
        spec.period_ms,
        now,
      );
      updates.push([spec.name, bucket.tokens, bucket.updatedMs]);
      if (!worst || (!decision.allowed && worst.allowed) || decision.remaining < worst.remaining)
        worst = decision;
    }
    // A refused request spends nothing from any bucket.
    if (worst?.allowed !== false) {
      for (const [name, tokens, updated] of updates) {
        this.sql.exec(
          'INSERT INTO buckets (name, tokens, updated_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms',
          name,
          tokens,
          updated,
        );
      }
    }
    return worst ?? { allowed: true, limit: 0, remaining: 0, resetS: 0, retryAfterS: 0 };
  }
}

/** The Durable Object of one account. */
export function accountStub(env: Pick<Bindings, 'ACCOUNTS'>, accountId: string) {
  return env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
}
