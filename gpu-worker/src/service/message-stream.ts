/**
 * A single-consumer async queue: the scheduler pushes a job's messages, the HTTP response reads them in order.
 * Hand-written because it is a dozen lines and Node's stream classes would add buffering modes we do not need.
 */
export class MessageStream<T> implements AsyncIterable<T> {
  private readonly buffered: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;

  /** Appends a message (ignored after {@link close}). */
  push(message: T): void {
    if (this.closed) return;
    const waiter = this.waiting;
    if (waiter) {
      this.waiting = undefined;
      waiter({ value: message, done: false });
    } else {
      this.buffered.push(message);
    }
  }

  /** Ends the stream once the buffered messages are read. */
  close(): void {
    this.closed = true;
    const waiter = this.waiting;
    if (waiter && this.buffered.length === 0) {
      this.waiting = undefined;
      waiter({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const value = this.buffered.shift();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
    };
  }
}
