/**
 * A loopback TCP proxy (node:net) that can cut every live connection at once, on demand or
 * at random moments (bounded count and time), to simulate network failures mid-stream.
 * The target port can change (a restarted server listens on a new port).
 */
import net from 'node:net';

export interface ChaosOptions {
  /** Maximum number of cuts. */
  maxCuts: number;
  /** Random pause between cuts, in ms. */
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Stop cutting after this long (ms), whatever the count. */
  maxDurationMs: number;
  random?: () => number;
}

export class TcpProxy {
  readonly port: number;
  cuts = 0;
  /** Connections accepted so far. */
  accepted = 0;
  private targetPort: number;
  private readonly server: net.Server;
  private readonly live = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private chaosTimer: NodeJS.Timeout | undefined;
  private chaosDone: (() => void) | undefined;

  private constructor(server: net.Server, port: number, targetPort: number) {
    this.server = server;
    this.port = port;
    this.targetPort = targetPort;
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    return new TcpProxy(server, port, targetPort);
  }

  get liveConnections(): number {
    return this.live.size;
  }

  setTarget(port: number): void {
    this.targetPort = port;
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.live.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const teardown = () => {
      if (!this.live.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', teardown);
    upstream.on('close', teardown);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Destroy every live connection abruptly (both directions, no WebSocket close frame). */
  cutAll(): number {
    const n = this.live.size;
    for (const pair of [...this.live]) {
      this.live.delete(pair);
      // resetAndDestroy sends RST where available: the peer sees an abrupt failure.
      const c = pair.client as net.Socket & { resetAndDestroy?: () => void };
      if (typeof c.resetAndDestroy === 'function') c.resetAndDestroy();
      else c.destroy();
      pair.upstream.destroy();
    }
    if (n > 0) this.cuts++;
    return n;
  }

  /** Cut all connections at random moments; resolves when done (count or time bound reached). */
  chaos(opts: ChaosOptions): Promise<void> {
    const random = opts.random ?? Math.random;
    const deadline = Date.now() + opts.maxDurationMs;
    let made = 0;
    return new Promise<void>((resolve) => {
      this.chaosDone = resolve;
      const schedule = () => {
        if (made >= opts.maxCuts || Date.now() >= deadline) {
          this.stopChaos();
          return;
        }
        const wait = opts.minIntervalMs + Math.floor(random() * (opts.maxIntervalMs - opts.minIntervalMs));
        this.chaosTimer = setTimeout(() => {
          if (this.cutAll() > 0) made++;
          schedule();
        }, wait);
      };
      schedule();
    });
  }

  stopChaos(): void {
    if (this.chaosTimer) clearTimeout(this.chaosTimer);
    this.chaosTimer = undefined;
    const done = this.chaosDone;
    this.chaosDone = undefined;
    done?.();
  }

  async close(): Promise<void> {
    this.stopChaos();
    for (const pair of [...this.live]) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.live.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
