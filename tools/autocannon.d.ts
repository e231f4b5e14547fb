// The part of autocannon's programmatic API the load generator uses (autocannon ships no types;
// this avoids a @types dependency for a few fields). Called without a callback, autocannon returns
// its run tracker: an event emitter that is also a thenable of the result.

declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
      path?: string;
      headers?: Record<string, string>;
      body?: string;
      // The context object is per connection and shared by its requests in sequence.
      setupRequest?: (req: Request, context: any) => Request;
      onResponse?: (status: number, body: string, context: any, headers: Record<string, string>) => void;
    }
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      amount?: number;
      pipelining?: number;
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
      headers?: Record<string, string>;
      body?: string;
      requests?: Request[];
    }
    interface Result {
      duration: number;
      /** Socket errors and timeouts (each timeout is counted here and in `timeouts`). */
      errors: number;
      timeouts: number;
      non2xx: number;
      '2xx': number;
      statusCodeStats?: Record<string, { count: number }>;
      requests: { total: number };
    }
  }
  namespace autocannon {
    interface Instance extends PromiseLike<Result> {
      /** Each response, as it arrives; `responseTimeMs` from request sent to response complete. */
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): this;
      /** Each failed request (socket error or timeout). */
      on(event: 'reqError', listener: (error: Error) => void): this;
    }
  }
  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export default autocannon;
}
