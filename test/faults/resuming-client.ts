/**
 * A test client that keeps one subscription alive across connection failures, resuming with
 * `after_seq` = the highest seq it received (SPEC §2.8). It records EVERY event frame it receives,
 * duplicates included (no client-side de-duplication), so a test can assert the server's
 * exactly-once, in-order promise across reconnects.
 */
import { isEventFrame, WsTestClient, type Frame } from '../helpers/ws-client.js';

export class ResumingClient {
  readonly received: Frame[] = [];
  connections = 0;
  lastSeq = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wakeStop: () => void = () => {};
  private readonly stopSignal = new Promise<void>((r) => (this.wakeStop = r));

  constructor(
    /** Where to connect; read at each attempt (a node may change). */
    private readonly url: () => string,
    private readonly token: string,
    private readonly rooms: string[],
  ) {}

  start(): Promise<void> {
    let firstReady!: () => void;
    const ready = new Promise<void>((r) => (firstReady = r));
    this.loop = this.run(firstReady);
    return ready;
  }

  private async run(firstReady: () => void): Promise<void> {
    while (!this.stopped) {
      let c: WsTestClient | null = null;
      try {
        c = await WsTestClient.connect(this.url(), { timeoutMs: 3000 });
        this.connections++;
        c.ws.on('message', () => this.absorb(c!));
        await c.authenticate(this.token, 3000);
        const sub = await c.subscribe(this.rooms, this.lastSeq, 3000);
        if (sub.msg_type !== 'subscribed') throw new Error(`subscribe answered ${JSON.stringify(sub)}`);
        firstReady();
        await Promise.race([c.closed, this.stopSignal]);
      } catch {
        /* cut during connect/auth/subscribe: retry */
      } finally {
        if (c) {
          this.absorb(c);
          if (!c.closeInfo) await c.close().catch(() => undefined);
          this.absorb(c);
        }
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Move event frames from the connection's queue into `received`, in arrival order. */
  private absorb(c: WsTestClient): void {
    for (const f of c.drain(isEventFrame)) {
      this.received.push(f);
      if ((f.seq as number) > this.lastSeq) this.lastSeq = f.seq as number;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeStop();
    await this.loop;
  }
}
