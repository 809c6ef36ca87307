/** Small loopback helpers for starting the benchmark's servers. */
import { connect, createServer } from 'node:net';

/** A port free on 127.0.0.1 right now (the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a server on 127.0.0.1:port answers `request` with a reply starting with `expect` (1 s bound). */
export function answers(port: number, request: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write(request));
    s.once('data', (d) => done(d.toString('latin1').startsWith(expect)));
  });
}
