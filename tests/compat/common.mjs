// What client.mjs (pusher-js) and echo.mjs (Laravel Echo over pusher-js) share: the output
// protocol, the app's auth endpoints done in process with the npm `pusher` SDK, connection
// reports, and the stdin command loop.

import readline from 'node:readline';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';

/** Prints one report line on stdout. */
export function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** pusher-js logs to stderr, which the Rust test keeps in the client's log file. */
export function logToStderr() {
  Pusher.logToConsole = false;
  Pusher.log = (message) => process.stderr.write(`[pusher-js] ${message}\n`);
}

/**
 * The pusher-js options for a connection to one edge, plus the app's authorizers.
 *
 * `options.signer` ({appId, key, secret, encryptionMasterKeyBase64}) configures an npm `pusher`
 * SDK instance that plays the app's auth endpoints, as a Laravel or Express app would: it signs
 * channel subscriptions (`authorizeChannel`, which adds `shared_secret` on encrypted channels) and
 * user sign-ins (`authenticateUser`). `options.user` ({id, info, watchlist?}) is who this client
 * is: the `channel_data` of presence channels ({user_id, user_info}) and the `user_data` of
 * sign-in ({id, user_info, watchlist}). With `user.presence_by_signin`, the channel endpoint
 * signs presence channels without `channel_data` (`authorizeChannel(socketId, channel)`), and
 * pusher-js (≥ 7.4) takes the presence identity from the signed-in user instead.
 */
export function pusherOptions(options) {
  const base = {
    wsHost: options.host,
    wsPort: options.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    // pusher-js 8 deprecates `disableStats`; stats stay off (its default) and go nowhere here.
    enableStats: false,
  };
  if (options.signer) {
    const app = new PusherServer(options.signer);
    const user = options.user;
    base.channelAuthorization = {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const presence = channelName.startsWith('presence-') && !user?.presence_by_signin;
          if (presence && !user) {
            throw new Error(`no user to join ${channelName} as`);
          }
          const channelData = presence ? { user_id: user.id, user_info: user.info } : undefined;
          callback(null, app.authorizeChannel(socketId, channelName, channelData));
        } catch (error) {
          callback(error, null);
        }
      },
    };
    base.userAuthentication = {
      customHandler: ({ socketId }, callback) => {
        try {
          if (!user) {
            throw new Error('no user to sign in as');
          }
          const userData = { id: user.id, user_info: user.info, watchlist: user.watchlist };
          callback(null, app.authenticateUser(socketId, userData));
        } catch (error) {
          callback(error, null);
        }
      },
      // Laravel Echo writes CSRF / bearer headers here when it finds a token.
      headers: {},
    };
  }
  return { ...base, ...(options.pusher ?? {}) };
}

/** Reports connection state changes, the socket id once connected, and connection errors. */
export function reportConnection(pusher) {
  pusher.connection.bind('state_change', ({ previous, current }) => {
    emit({ type: 'state', previous, current });
  });
  pusher.connection.bind('connected', () => {
    emit({ type: 'connected', socket_id: pusher.connection.socket_id });
  });
  pusher.connection.bind('error', (error) => {
    emit({ type: 'error', error: describeError(error) });
  });
}

/** A JSON-serialisable view of what pusher-js passed to an error callback. */
export function describeError(error) {
  if (error instanceof Error) {
    return { name: error.name, message: error.message };
  }
  // pusher-js wraps errors as {type, error} or {type, data}; faye events are not serialisable.
  // A wrapped PusherError ({type, data}) is kept whole: its data holds the close code.
  const { type, data, error: inner, status } = error ?? {};
  const cause = inner?.data !== undefined ? { type: inner.type, data: inner.data } : undefined;
  return { type, data, error: cause ?? inner?.message ?? inner?.type ?? undefined, status };
}

/**
 * Runs one command per stdin line: `{"op": name, ...}` calls `commands[name](command)`.
 * `disconnect` (or closing stdin) calls `disconnect()`, prints `{"type": "exit"}`, and lets Node
 * exit once the WebSocket close handshake is over, as a real client's process would.
 */
export function runCommands(commands, disconnect) {
  let exiting = false;
  const lines = readline.createInterface({ input: process.stdin });
  const exit = () => {
    if (exiting) {
      return;
    }
    exiting = true;
    lines.close();
    disconnect();
    emit({ type: 'exit' });
    // Bounds a server that never answers the close; unref'd so it never delays a clean exit.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  const all = { ...commands, disconnect: exit };
  lines
    .on('line', (text) => {
      if (text.trim() === '') {
        return;
      }
      const command = JSON.parse(text);
      const run = all[command.op];
      if (!run) {
        throw new Error(`unknown op ${JSON.stringify(command.op)} in ${text}`);
      }
      run(command);
    })
    .on('close', exit);
}

export { Pusher };
