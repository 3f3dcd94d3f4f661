/**
 * The installed @chainsafe/libp2p-yamux carries patches/@chainsafe+libp2p-yamux+*.patch: a stream
 * answers small data frames with no window update until half its receive window is used, then
 * with one update that restores the whole window, so the sender is never starved. Unpatched, the
 * first test fails (one update per frame).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { Uint8ArrayList } from 'uint8arraylist';

const DATA = 0;
const WINDOW_UPDATE = 1;
const WINDOW = 256 * 1024;

interface SentFrame {
  type: number;
  flag: number;
  length: number;
}

/** A libp2p logger that logs nothing. */
const quietLog = Object.assign(() => {}, {
  enabled: false,
  error: () => {},
  trace: () => {},
  newScope: () => quietLog,
});

function stream(state: StreamState): { s: YamuxStream; sent: SentFrame[] } {
  const sent: SentFrame[] = [];
  const s = new YamuxStream({
    id: '1',
    streamId: 1,
    state,
    direction: 'inbound',
    log: quietLog,
    initialStreamWindowSize: WINDOW,
    maxStreamWindowSize: WINDOW,
    getRTT: () => -1,
    sendFrame: (header: SentFrame) => {
      sent.push(header);
      return true;
    },
    // biome-ignore lint/suspicious/noExplicitAny: the init type is internal to yamux
  } as any);
  return { s, sent };
}

function receive(s: YamuxStream, bytes: number): void {
  const data = new Uint8ArrayList(new Uint8Array(bytes));
  (s as unknown as { handleData(f: unknown): void }).handleData({
    header: { type: DATA, flag: 0, streamID: 1, length: bytes },
    data,
  });
}

describe('yamux window updates', () => {
  it('sends none for small frames, then one that restores the whole window', () => {
    const { s, sent } = stream(StreamState.Established);
    // 100 frames of 1 KiB: 100 KiB, under half the window.
    for (let i = 0; i < 100; i++) receive(s, 1024);
    assert.equal(sent.filter((f) => f.type === WINDOW_UPDATE).length, 0);
    // Past half the window: one update, for everything consumed so far.
    receive(s, 30 * 1024);
    const updates = sent.filter((f) => f.type === WINDOW_UPDATE);
    assert.equal(updates.length, 1);
    assert.equal(updates[0].length, 130 * 1024);
  });

  it('lets a sender fill the window without ever running out', () => {
    const { s, sent } = stream(StreamState.Established);
    // The sender's view of our window: it may send while it has capacity left.
    let senderCapacity = WINDOW;
    let delivered = 0;
    while (delivered < 8 * WINDOW) {
      const chunk = Math.min(16 * 1024, senderCapacity);
      assert.ok(chunk > 0, 'the sender ran out of window');
      receive(s, chunk);
      senderCapacity -= chunk;
      delivered += chunk;
      for (const f of sent.splice(0)) if (f.type === WINDOW_UPDATE) senderCapacity += f.length;
    }
  });

  it('keeps the handshake: a stream still to acknowledge answers at once', () => {
    const { s, sent } = stream(StreamState.SYNReceived);
    receive(s, 100);
    assert.equal(sent.filter((f) => f.type === WINDOW_UPDATE).length, 1);
  });
});
