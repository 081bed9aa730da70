// Unit tests of the add-on against a stand-in for the pusher-js objects it touches
// (send_event, connection, the transport's raw frames). The end-to-end tests with the real
// pusher-js and Laravel Echo against real Herald processes are in the Herald repository's Rust
// suite (tests/tests/black_box/resume.rs, which also runs this file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { install, withResume } from '../index.mjs';

class Emitter {
  constructor() {
    this.callbacks = {};
  }
  bind(name, callback) {
    (this.callbacks[name] ??= []).push(callback);
  }
  emit(name, data) {
    for (const callback of this.callbacks[name] ?? []) {
      callback(data);
    }
  }
}

function fakePusher() {
  const sent = [];
  const channels = new Map();
  const connection = new Emitter();
  const pusher = {
    connection,
    sent,
    send_event(name, data, channel) {
      sent.push({ name, data, channel });
      return true;
    },
    channel: (name) => channels.get(name),
    subscribe(name) {
      const channel = new Emitter();
      channels.set(name, channel);
      pusher.send_event('pusher:subscribe', { channel: name, auth: '' });
      return channel;
    },
    connect(socketId) {
      connection.socket_id = socketId;
      connection.connection = { transport: new Emitter() };
      connection.emit('connected');
      return connection.connection.transport;
    },
  };
  return pusher;
}

test('subscribes opt in, and resubscribes resume after the last position received', () => {
  const pusher = fakePusher();
  const herald = install(pusher);
  const transport = pusher.connect('1.1');
  const channel = pusher.subscribe('orders');
  assert.deepEqual(pusher.sent[0].data, { channel: 'orders', auth: '', herald: {} });
  transport.emit('message', {
    data: '{"event":"a","channel":"orders","data":"{}","herald_seq":"41"}',
  });
  transport.emit('message', {
    data: '{"event":"b","channel":"orders","data":"{}","herald_seq":"42"}',
  });
  assert.deepEqual(herald.positions.get('orders'), { seq: '42', socketId: '1.1' });
  const next = pusher.connect('2.2');
  pusher.send_event('pusher:subscribe', { channel: 'orders' });
  assert.deepEqual(pusher.sent[1].data, {
    channel: 'orders',
    herald: { after: '42', socket_id: '1.1' },
  });
  const failures = [];
  channel.bind('herald:resume_failed', (data) => failures.push(data));
  herald.on('resumed', (data) => failures.push({ resumed: data }));
  next.emit('message', {
    data: '{"event":"pusher_internal:herald_resume_failed","channel":"orders","data":"{\\"reason\\":\\"history_exceeded\\",\\"after\\":\\"42\\",\\"lost_through\\":\\"50\\",\\"replayed\\":3}"}',
  });
  assert.deepEqual(failures, [
    { channel: 'orders', reason: 'history_exceeded', after: '42', lost_through: '50', replayed: 3 },
  ]);
  assert.deepEqual(herald.stats, { resumed: 0, failed: 1, replayed: 3 });
});

test('an unsubscribe forgets the position; frames of unknown channels are ignored', () => {
  const pusher = fakePusher();
  const herald = install(pusher);
  const transport = pusher.connect('1.1');
  pusher.subscribe('orders');
  transport.emit('message', { data: '{"event":"a","channel":"other","data":"{}","herald_seq":"7"}' });
  transport.emit('message', { data: '{"event":"a","channel":"orders","data":"{}","herald_seq":"8"}' });
  assert.deepEqual([...herald.positions.keys()], ['orders']);
  pusher.send_event('pusher:unsubscribe', { channel: 'orders' });
  assert.equal(herald.positions.size, 0);
  assert.throws(() => herald.on('nope', () => {}), /unknown event nope/);
});

test('withResume installs the add-on on every instance', () => {
  class Base {
    constructor() {
      Object.assign(this, fakePusher());
    }
  }
  const Resumable = withResume(Base);
  const pusher = new Resumable('key', {});
  assert.ok(pusher.herald);
  assert.ok(pusher instanceof Base);
});
