'use strict';
// herald-resume: opt-in resume for pusher-js 8 (and so Laravel Echo 2) on Herald.
//
// How it works (docs/resume.md in the Herald repository has the whole design):
// - Every `pusher:subscribe` this client sends carries `"herald": {}` in its data: Herald then
//   adds the event's position to each event frame of that channel, as a top-level
//   `"herald_seq"` field. pusher-js keeps only event/channel/data/user_id of a frame, so it
//   never sees it; this add-on reads the raw frames from pusher-js's transport.
// - It remembers, per channel, the position of the last event the app received (and the
//   socket id it came on). When pusher-js subscribes again after a reconnect — to the same
//   server or any other of the region — the subscribe carries `"herald": {"after": position,
//   "socket_id": previous}`, and Herald delivers what the app missed before any live event:
//   in order, each once.
// - When history no longer reaches back (Herald keeps 2,000 events / 60 s per channel by
//   default), Herald says so: the add-on emits `herald:resume_failed` on the channel (Echo:
//   `.listen('.herald:resume_failed', …)`) and `resume_failed` on `pusher.herald`, so the app
//   can refetch. Nothing is skipped silently.
//
// Nothing here touches pusher-js's decoding or its events; a server that is not Herald ignores
// the extra subscribe field and sends plain frames.

const RESUMED = 'pusher_internal:herald_resumed';
const RESUME_FAILED = 'pusher_internal:herald_resume_failed';

/**
 * Installs the add-on on a pusher-js instance (before it connects, i.e. right after `new
 * Pusher(…)`: pusher-js connects asynchronously). Returns `pusher.herald`.
 */
function install(pusher) {
  if (pusher.herald) {
    return pusher.herald;
  }
  const listeners = { resumed: [], resume_failed: [] };
  const herald = {
    positions: new Map(),
    stats: { resumed: 0, failed: 0, replayed: 0 },
    on(event, callback) {
      if (!listeners[event]) {
        throw new Error(`herald-resume: unknown event ${event} (resumed, resume_failed)`);
      }
      listeners[event].push(callback);
    },
  };
  let socketId = null;
  let transport = null;

  const sendEvent = pusher.send_event.bind(pusher);
  pusher.send_event = (name, data, channel) => {
    if (name === 'pusher:subscribe' && data && typeof data.channel === 'string') {
      const extension = {};
      const position = herald.positions.get(data.channel);
      if (position) {
        extension.after = position.seq;
        if (position.socketId) {
          extension.socket_id = position.socketId;
        }
      }
      data = Object.assign({}, data, { herald: extension });
    } else if (name === 'pusher:unsubscribe' && data && typeof data.channel === 'string') {
      // The app left the channel: a later subscription starts afresh.
      herald.positions.delete(data.channel);
    }
    return sendEvent(name, data, channel);
  };

  function emit(event, data) {
    for (const callback of listeners[event]) {
      callback(data);
    }
  }

  function onFrame(message) {
    const text = message && message.data;
    if (typeof text !== 'string' || text.indexOf('herald_') === -1) {
      return;
    }
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      return;
    }
    const name = frame.channel;
    if (typeof name !== 'string' || !pusher.channel(name)) {
      return;
    }
    if (typeof frame.herald_seq === 'string') {
      // This listener runs after pusher-js has handed the event to the app.
      herald.positions.set(name, { seq: frame.herald_seq, socketId });
      return;
    }
    if (frame.event !== RESUMED && frame.event !== RESUME_FAILED) {
      return;
    }
    let data = {};
    try {
      data = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data || {};
    } catch (error) {
      data = {};
    }
    const report = Object.assign({ channel: name }, data);
    herald.stats.replayed += Number(data.replayed) || 0;
    if (frame.event === RESUMED) {
      herald.stats.resumed += 1;
      emit('resumed', report);
    } else {
      herald.stats.failed += 1;
      pusher.channel(name).emit('herald:resume_failed', report);
      emit('resume_failed', report);
    }
  }

  // pusher-js subscribes every channel on `connected` (bound in its constructor, so before this),
  // then this binds the new transport's raw frames: in the same turn, before any frame is read.
  pusher.connection.bind('connected', () => {
    socketId = pusher.connection.socket_id || null;
    const connection = pusher.connection.connection;
    const current = connection && connection.transport;
    if (current && current !== transport) {
      transport = current;
      transport.bind('message', onFrame);
    }
  });

  pusher.herald = herald;
  return herald;
}

/**
 * A subclass of the pusher-js class whose instances resume: `window.Pusher = withResume(Pusher)`
 * before `new Echo(…)`.
 */
function withResume(Pusher) {
  return class HeraldPusher extends Pusher {
    constructor(key, options) {
      super(key, options);
      install(this);
    }
  };
}

module.exports = { withResume, install };
