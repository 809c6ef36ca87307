/**
 * The raw-protocol transcript of README.md, played against a real server: every `→` line is
 * sent as written (the key filled in), every `←` line must come back (msg_type, seq, and the
 * whole payload where the README shows one without `…`), including the resume with `after_seq`
 * after a dropped connection. A README that shows frames the server does not send fails here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePayload, type EventType } from '../helpers/payloads.js';
import { createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(() => stopAll());

function transcript(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /Raw protocol[^\n]*\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('no raw protocol block in README.md');
  return m[1]!.split('\n').filter((l) => l.trim());
}

/** The frame on a transcript line (the part before a second arrow); `…` values become null. */
function frameOf(line: string): { frame: Record<string, unknown>; exact: boolean } {
  const json = line.slice(1).split(/\s{2,}→/)[0]!.trim();
  const exact = !json.includes('…');
  const parsable = json.replace(/"[^"]*…[^"]*"/g, 'null').replace(/\{…\}/g, 'null').replace(/:…/g, ':null').replace(/\[…\]/g, 'null');
  return { frame: JSON.parse(parsable) as Record<string, unknown>, exact };
}

describe('README raw protocol', () => {
  it('is what the server does, resume included', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const lines = transcript();
    expect(lines.some((l) => l.includes('after_seq'))).toBe(true);
    let ws = await WsTestClient.connect(server.wsUrl);
    let published = 0;
    const eventLines = lines.filter((l) => l.startsWith('←') && /"seq":\d+/.test(l));
    for (const [i, line] of lines.entries()) {
      if (line.startsWith('→')) {
        ws.sendRaw(line.slice(1).trim().replace('tp_live_…', token));
      } else if (line.startsWith('←')) {
        const { frame: want } = frameOf(line);
        if (want.msg_type === 'ping') continue; // every 30 s: not waited for here
        const seq = want.seq as number | undefined;
        while (seq !== undefined && published < seq) {
          const type = frameOf(eventLines.find((l) => l.includes(`"seq":${published + 1},`))!).frame.msg_type as EventType;
          await publish(server, { msg_type: type, account_ids: [accountId], payload: samplePayload(type) });
          published++;
        }
        const got = await ws.next((f) => f.msg_type !== 'ping');
        expect(got.msg_type, line).toBe(want.msg_type);
        if (seq !== undefined) expect(got.seq, line).toBe(seq);
        const payload = want.payload as Record<string, unknown> | null;
        if (payload && typeof payload === 'object') {
          for (const [k, v] of Object.entries(payload)) if (v !== null) expect((got.payload as Record<string, unknown>)[k], `${k} in ${line}`).toEqual(v);
        }
      } else if (line.includes('drops')) {
        ws.close();
        // What is published while the client is away: the events the transcript shows after it.
        for (const later of lines.slice(i + 1).filter((l) => /"seq":\d+/.test(l) && l.startsWith('←'))) {
          const { frame } = frameOf(later);
          await publish(server, { msg_type: frame.msg_type as EventType, account_ids: [accountId], payload: samplePayload(frame.msg_type as EventType) });
          published++;
          expect(published).toBe(frame.seq);
        }
        ws = await WsTestClient.connect(server.wsUrl);
      }
    }
    ws.close();
  }, 60_000);
});
