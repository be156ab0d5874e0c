/** Bindings and variables of the edge Worker (see the root wrangler.toml). */
export interface Bindings {
  ENVIRONMENT: string;
}

/** Hono environment: bindings plus per-request variables set by middleware. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: { requestId: string };
}
