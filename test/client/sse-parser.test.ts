/**
 * The SDK's event-stream parser (packages/client/src/sse.ts) against the WHATWG rules, model-based:
 * any stream of messages and comments, written with any mix of CRLF/LF/CR line endings and cut
 * into chunks at any point (inside a CRLF too), parses to the same messages and comments.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCloseComment, SseParser, type SseMessage } from '../../packages/client/src/sse.js';

type Item = { kind: 'message'; event?: string; id?: string; data: string[] } | { kind: 'comment'; text: string };

const lineText = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '{', '"', 'ü', '✓', '😀', 'x', '1'), maxLength: 12 });
const name = fc.string({ unit: fc.constantFrom('A', 'B', '_', 'q'), minLength: 1, maxLength: 6 });

const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({
    kind: fc.constant('message' as const),
    event: fc.option(name, { nil: undefined }),
    id: fc.option(fc.nat({ max: 1e6 }).map(String), { nil: undefined }),
    data: fc.array(lineText, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('comment' as const), text: lineText }),
);

function serialize(items: Item[], eol: () => string): string {
  let out = '';
  for (const it of items) {
    if (it.kind === 'comment') {
      out += `:${it.text}${eol()}`;
      continue;
    }
    if (it.id !== undefined) out += `id: ${it.id}${eol()}`;
    if (it.event !== undefined) out += `event:${it.event}${eol()}`; // no space after the colon: allowed
    for (const d of it.data) out += `data: ${d}${eol()}`;
    out += eol();
  }
  return out;
}

describe('SseParser', () => {
  it('any messages and comments, any line endings, any chunking: the same result', () => {
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 12 }),
        fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat({ max: 40 }), { maxLength: 20 }),
        (items, eols, cuts) => {
          // A CR followed by a LF is one line ending (CRLF): after a CR, a LF ending becomes a CR.
          let i = 0;
          let previous = '';
          const text = serialize(items, () => {
            let eol = eols[i++ % eols.length]!;
            if (previous === '\r' && eol.startsWith('\n')) eol = '\r';
            return (previous = eol);
          });
          const messages: SseMessage[] = [];
          const comments: string[] = [];
          const parser = new SseParser((m) => messages.push(m), (c) => comments.push(c));
          let at = 0;
          for (const cut of cuts) {
            parser.push(text.slice(at, at + cut));
            at += cut;
          }
          parser.push(text.slice(at));
          const expectedMessages = items.flatMap((it) =>
            it.kind === 'message' ? [{ event: it.event || 'message', data: it.data.join('\n'), id: it.id }] : [],
          );
          const expectedComments = items.flatMap((it) => (it.kind === 'comment' ? [it.text.replace(/^ /, '')] : []));
          expect(messages).toEqual(expectedMessages);
          expect(comments).toEqual(expectedComments);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a message is dispatched only at its blank line; a stream cut mid-message dispatches nothing', () => {
    const messages: SseMessage[] = [];
    const parser = new SseParser((m) => messages.push(m));
    parser.push('id: 7\nevent: BID_REQUEST\ndata: {"a":1}\n');
    expect(messages).toEqual([]);
    parser.push('\n');
    expect(messages).toEqual([{ id: '7', event: 'BID_REQUEST', data: '{"a":1}' }]);
  });

  it('a CRLF split across reads with an empty read in between (a multi-byte character cut by the network) is one line ending', () => {
    const messages: SseMessage[] = [];
    const parser = new SseParser((m) => messages.push(m));
    parser.push('data: a\r');
    parser.push(''); // what TextDecoder yields for a read holding only the first bytes of '😀'
    parser.push('\ndata: b\r\n\r\n');
    expect(messages).toEqual([{ event: 'message', data: 'a\nb', id: undefined }]);
  });

  it('reads the close comment of the server', () => {
    expect(parseCloseComment('close 4001 API key was deactivated')).toEqual({ code: 4001, reason: 'API key was deactivated' });
    expect(parseCloseComment('close 1001')).toEqual({ code: 1001, reason: '' });
    expect(parseCloseComment('ping')).toBeUndefined();
  });
});
