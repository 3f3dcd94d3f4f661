/**
 * Pausing a libp2p stream so that the pause holds.
 *
 * libp2p's resume() first hands over what the stream buffered while paused, and only then tells
 * yamux to grant window again. A pause() from inside that hand-over (the reader is full again, as
 * it is whenever a window's worth was waiting) is thus undone at once: the stream says 'paused'
 * but yamux keeps granting window, the far end sends as fast as it can, and once the unread bytes
 * pass the stream's maxReadBufferLength libp2p aborts it (the first large `plexus cp` to a node
 * was cut part-way this way). So a pause asked for while resuming is made once resume() returned.
 */
import type { Stream } from '@libp2p/interface';

/** Pauses and resumes one stream (see the module comment). */
export interface StreamPauser {
  /** Pauses now (`pauseNow`), or once the resume() under way has returned. */
  pause(): void;
  /** Resumes a paused stream; then makes a pause asked for meanwhile, if `stillWanted()`. */
  resume(): void;
}

/**
 * `pauseNow` pauses the stream (and whatever its caller keeps with that); `stillWanted` says,
 * after a resume, whether a pause asked for during it still makes sense (the hand-over may have
 * ended the stream, or the reader may have caught up).
 */
export function streamPauser(stream: Stream, pauseNow: () => void, stillWanted: () => boolean): StreamPauser {
  let resuming = false;
  let deferred = false;
  return {
    pause() {
      if (resuming) deferred = true;
      else pauseNow();
    },
    resume() {
      if (stream.readStatus !== 'paused') return;
      resuming = true;
      try {
        stream.resume();
      } finally {
        resuming = false;
      }
      if (!deferred) return;
      deferred = false;
      if (stillWanted()) pauseNow();
    },
  };
}
