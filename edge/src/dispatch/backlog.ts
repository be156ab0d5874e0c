import { DurableObject } from 'cloudflare:workers';
import type { WorkerJob } from '@contour/shared/contracts';
import type { Bindings } from '../env.ts';

/** Entries not updated for this long are dropped (a lost terminal update must not scale the pool forever). */
export const BACKLOG_ENTRY_TTL_MS = 60 * 60_000;

/** Where one generation stands, as far as the pool's capacity is concerned. */
export interface BacklogEntry {
  /** Base model and head set, e.g. `sd15:canny+depth` (workers serving it form one pool). */
  pool: string;
  status: 'queued' | 'running';
  /** When it was enqueued (epoch ms); the oldest wait is measured from it. */
  queued_at_ms: number;
  updated_ms: number;
}

/** The numbers KEDA's metrics-api scaler reads (all pools, or one). */
export interface PoolMetrics {
  /** Generations waiting for a worker. */
  queued: number;
  /** Generations a worker is running. */
  running: number;
  /** queued + running: what a pool sized at N jobs per worker scales on. */
  backlog: number;
  /** Seconds the oldest queued generation has waited (0 when none). */
  oldest_wait_s: number;
}

/** The pool a job needs: its base model and the sorted set of its control types. */
export function poolKey(job: Pick<WorkerJob, 'base_model' | 'controls'>): string {
  const heads = [...new Set(job.controls.map((c) => c.type))].sort();
  return `${job.base_model}:${heads.join('+')}`;
}

function summarize(entries: Iterable<BacklogEntry>, now: number): PoolMetrics {
  let queued = 0;
  let running = 0;
  let oldest = now;
  for (const entry of entries) {
    if (entry.status === 'queued') {
      queued++;
      oldest = Math.min(oldest, entry.queued_at_ms);
    } else running++;
  }
  return { queued, running, backlog: queued + running, oldest_wait_s: Math.max(0, (now - oldest) / 1000) };
}

/**
 * The pool's backlog in one Durable Object: every generation object reports its transitions here (a set
 * keyed by generation id, so repeated or reordered reports converge), and the metrics route reads it.
 * One object serves a few hundred updates per second; past that, shard it by pool.
 */
export class BacklogObject extends DurableObject<Bindings> {
  private entries: Map<string, BacklogEntry> | undefined;

  private async all(): Promise<Map<string, BacklogEntry>> {
    if (!this.entries) {
      const stored = await this.ctx.storage.list<BacklogEntry>({ prefix: 'g:' });
      this.entries = new Map([...stored].map(([key, value]) => [key.slice(2), value]));
    }
    return this.entries;
  }

  /** Records a generation as queued or running, or forgets it (`null`: terminal). */
  async record(generationId: string, entry: BacklogEntry | null): Promise<void> {
    const entries = await this.all();
    if (entry) {
      entries.set(generationId, entry);
      await this.ctx.storage.put(`g:${generationId}`, entry);
    } else if (entries.delete(generationId)) {
      await this.ctx.storage.delete(`g:${generationId}`);
    }
  }

  /** Totals, per pool, and the one pool asked for (if any). Drops stale entries on the way. */
  async snapshot(
    now: number = Date.now(),
  ): Promise<PoolMetrics & { pools: (PoolMetrics & { pool: string })[] }> {
    const entries = await this.all();
    const byPool = new Map<string, BacklogEntry[]>();
    for (const [id, entry] of entries) {
      if (now - entry.updated_ms > BACKLOG_ENTRY_TTL_MS) {
        entries.delete(id);
        await this.ctx.storage.delete(`g:${id}`);
        continue;
      }
      const list = byPool.get(entry.pool) ?? [];
      list.push(entry);
      byPool.set(entry.pool, list);
    }
    const pools = [...byPool].map(([pool, list]) => ({ pool, ...summarize(list, now) }));
    pools.sort((a, b) => a.pool.localeCompare(b.pool));
    return { ...summarize(entries.values(), now), pools };
  }
}

/** The single backlog object. */
export function backlogStub(env: Pick<Bindings, 'BACKLOG'>) {
  return env.BACKLOG.get(env.BACKLOG.idFromName('pool'));
}
