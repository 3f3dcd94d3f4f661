/**
 * Makes @chainsafe/libp2p-yamux send a stream's window update only once half of its receive
 * window has been used, as Go's yamux (hashicorp/yamux, `sendWindowUpdate`) and the spec's
 * reference implementation do. As shipped, it answers every data frame with a window update
 * frame: each small message (a gossiped telemetry record, a membership sync, a command reply)
 * costs a second frame, a second Noise encryption and a second socket write on the receiver,
 * and a frame to decrypt and handle on the sender. In a 25-agent mesh, idle, those updates were
 * ~14 % of an agent's busy time and socket writes ~20 % (CPU profile, bench/telemetry-gossip.ts).
 *
 * The sender is never starved: it may send while our remaining capacity is above zero, and an
 * update goes out before that capacity falls below half the window. Streams that are not
 * established (the SYN/ACK handshake, a paused stream) keep the original behaviour, and so does
 * the window auto-tuning, which runs whenever an update is sent.
 * Imported for its effect by node.ts, before any connection exists.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

interface WindowState {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
}

const proto = YamuxStream.prototype as unknown as {
  sendWindowUpdate(this: WindowState): void;
  plexusWindowFix?: boolean;
};

if (typeof proto.sendWindowUpdate === 'function' && !proto.plexusWindowFix) {
  const sendWindowUpdate = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function (this: WindowState) {
    const used = this.recvWindow - this.recvWindowCapacity;
    if (this.state === StreamState.Established && used < this.recvWindow / 2) return;
    sendWindowUpdate.call(this);
  };
  proto.plexusWindowFix = true;
}
