import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

// Every test file starts with the D1 schema applied (idempotent: applied migrations are recorded).
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
