/**
 * Closed-form M/M/c (Poisson arrivals, exponential service, c servers, FIFO): the Erlang C probability of
 * waiting and the mean wait in queue. The simulator is checked against it.
 */

/** Erlang C: probability that an arrival waits, for offered load `a` = lambda/mu erlangs on `c` servers. */
export function erlangC(c: number, a: number): number {
  if (a >= c) return 1;
  // Erlang B by its stable recursion, then C from B.
  let b = 1;
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  const rho = a / c;
  return b / (1 - rho + rho * b);
}

/** Mean time in queue (same unit as 1/mu) of an M/M/c queue with arrival rate `lambda` and service rate `mu`. */
export function mmcMeanWait(c: number, lambda: number, mu: number): number {
  if (lambda >= c * mu) return Number.POSITIVE_INFINITY;
  return erlangC(c, lambda / mu) / (c * mu - lambda);
}
