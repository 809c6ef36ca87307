/**
 * The hand-written frame encoder against ws's own (an independent implementation of RFC 6455
 * framing) and against ws's parser, across the 7/16/64-bit length boundaries and multi-byte UTF-8.
 */
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { preframe } from '../../src/gateway/frames.js';

type SenderStatic = { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
const Sender = (ws as unknown as { Sender: SenderStatic }).Sender;
type ReceiverCtor = new (opts: { isServer: boolean }) => NodeJS.WritableStream & { on(ev: 'message', cb: (data: Buffer, isBinary: boolean) => void): void };
const Receiver = (ws as unknown as { Receiver: ReceiverCtor }).Receiver;

function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text, 'utf8'), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
}

/** Text of the given UTF-8 byte length, ending in a multi-byte character when it fits. */
function textOfBytes(n: number): string {
  if (n < 4) return 'x'.repeat(n);
  return 'a'.repeat(n - 4) + '😀'; // 4 UTF-8 bytes
}

describe('preframe', () => {
  const lengths = [0, 1, 125, 126, 127, 1000, 4095, 4096, 65535, 65536, 70_000];

  it.each(lengths)('matches ws byte for byte at %i payload bytes', (n) => {
    const text = textOfBytes(n);
    expect(Buffer.byteLength(text)).toBe(n);
    expect(preframe(text).equals(wsFrame(text))).toBe(true);
  });

  it('is parsed back by ws into the same text, frame after frame', async () => {
    const texts = [...lengths.map(textOfBytes), '{"msg_type":"BID_REQUEST","payload":{"note":"é ü ß 中文"}}'];
    const receiver = new Receiver({ isServer: false });
    const got: string[] = [];
    receiver.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      got.push(data.toString('utf8'));
    });
    await new Promise<void>((resolve, reject) => receiver.write(Buffer.concat(texts.map(preframe)), (err) => (err ? reject(err) : resolve())));
    expect(got).toEqual(texts);
  });
});
