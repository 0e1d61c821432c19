// The chat page: plain ES modules, the stock socket.io-client browser bundle (copied into vendor/
// by .ci/install from the locked npm package), no build step. The events are those of
// docs/protocol.md §3; every `error` the server sends is shown as it came.
import { io } from './vendor/socket.io.esm.min.js';
import { $, el, formatSize, formatTime, absoluteUrl } from './ui.js';

const state = {
  socket: null,
  me: null,                 // {id, name} from the `connected` event
  rooms: new Map(),         // name -> {messages: [], users: Map(id -> user), unread, historyAsked}
  current: null,            // the room shown
  wanted: null,             // the room last asked to join: shown once joined
  server: '',
  pending: new Map(),       // client_msg_id -> the <li> of a message on its way
  seq: 0,
};

// ------------------------------------------------------------------------------------------
// Sign in

function serverFromPage() {
  const q = new URLSearchParams(location.search).get('server');
  return q || location.origin;
}

function setMode(mode) {
  $('#name-field').hidden = mode !== 'name';
  $('#token-field').hidden = mode !== 'token';
}

function setStatus(text, kind) {
  const s = $('#status');
  s.textContent = text;
  s.dataset.state = kind;
}

function connect(server, auth) {
  state.server = server;
  const socket = io(server, { auth, reconnectionDelayMax: 4000 });
  state.socket = socket;
  setStatus('Connecting…', 'connecting');

  socket.on('connect', () => {
    setStatus(state.me ? `Connected as ${state.me.name}` : 'Connected', 'online');
    // A recovered connection kept its rooms and got what it missed; a fresh one joins them again.
    if (!socket.recovered) for (const name of state.rooms.keys()) socket.emit('join_room', { room: name });
  });
  socket.on('connected', (data) => {
    state.me = data.user;
    $('#me-name').textContent = data.user.name;
    setStatus(`Connected as ${data.user.name}`, 'online');
    showChat(true);
  });
  socket.on('connect_error', (err) => {
    const code = err && err.data && err.data.code;
    if (!socket.active) {
      // Refused by the server (auth): socket.io does not retry these.
      showError({ code: code || 'connect_error', message: describeRefusal(err) });
      setStatus('Not connected', 'offline');
      showChat(false);
      if (code === 'missing_token' || code === 'invalid_token') {
        document.querySelector('input[name=mode][value=token]').checked = true;
        setMode('token');
      }
    } else {
      setStatus(`Cannot reach the server (${err.message}); retrying…`, 'reconnecting');
    }
  });
  socket.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') return;
    if (socket.active) setStatus(`Disconnected (${reason}); reconnecting…`, 'reconnecting');
    else setStatus(`Disconnected by the server (${reason})`, 'offline');
    setComposer(false);
  });
  socket.io.on('reconnect_attempt', (n) => setStatus(`Reconnecting… (attempt ${n})`, 'reconnecting'));
  socket.io.on('reconnect', (n) => setStatus(`Reconnected after ${n} attempt${n === 1 ? '' : 's'}`, 'online'));
  socket.io.on('reconnect_failed', () => setStatus('Could not reconnect', 'offline'));

  socket.on('joined_room', onJoined);
  socket.on('left_room', ({ room }) => removeRoom(room));
  socket.on('user_joined_room', ({ room, user }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    r.users.set(user.id, user);
    if (room === state.current) renderPeople();
  });
  socket.on('user_left_room', ({ room, user }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    r.users.delete(user.id);
    if (room === state.current) renderPeople();
  });
  socket.on('room_users', ({ room, users }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    r.users = new Map(users.map((u) => [u.id, u]));
    if (room === state.current) renderPeople();
  });
  socket.on('new_message', (m) => addMessage(m.room, { kind: 'text', ...m }));
  socket.on('new_file', (f) => addMessage(f.room, { kind: 'file', ...f }));
  socket.on('announcement', (data) => addNotice(state.current, `Announcement: ${textOf(data)}`));
  socket.on('error', (e) => {
    // The page asks for history; a server without it answers unknown_event: nothing to show.
    if (e && e.event === 'get_history' && e.code === 'unknown_event') return;
    showError(e);
  });
  socket.on('token_expired', () => showError({ code: 'token_expired', message: 'Your token expired: sign in again.' }));
}

function describeRefusal(err) {
  const code = err && err.data && err.data.code;
  if (code === 'missing_token') return 'This server runs with authentication: sign in with a token.';
  if (code) return `${err.message}: ${code}`;
  return err ? err.message : 'refused';
}

function textOf(v) {
  if (v && typeof v === 'object' && typeof v.text === 'string') return v.text;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function showChat(on) {
  $('#login').hidden = on;
  $('#chat').hidden = !on;
  setComposer(on && !!state.current && state.socket && state.socket.connected);
}

function setComposer(on) {
  for (const id of ['#text', '#send', '#file']) $(id).disabled = !on;
}

function signOut() {
  if (state.socket) state.socket.disconnect();
  state.socket = null;
  state.me = null;
  state.rooms.clear();
  state.current = null;
  renderRooms();
  renderRoom();
  setStatus('Not connected', 'offline');
  showChat(false);
}

// ------------------------------------------------------------------------------------------
// Errors

function showError(e) {
  const box = $('#errors');
  const code = e && e.code ? e.code : 'error';
  const message = e && e.message ? e.message : JSON.stringify(e);
  const item = el('div', { class: 'error', 'data-code': code },
    el('strong', {}, code), ' ', message, e && e.event ? el('span', { class: 'muted' }, ` (${e.event})`) : '',
    el('button', { type: 'button', class: 'close', 'aria-label': 'Dismiss' }, '×'));
  item.querySelector('button').addEventListener('click', () => item.remove());
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
}

// ------------------------------------------------------------------------------------------
// Rooms

function roomOf(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = { messages: [], users: new Map(), unread: 0, historyAsked: false };
    state.rooms.set(name, r);
  }
  return r;
}

function onJoined({ room, users }) {
  const r = roomOf(room);
  r.users = new Map(users.map((u) => [u.id, u]));
  if (!r.historyAsked) {
    r.historyAsked = true;
    askHistory(room);
  }
  if (!state.current || room === state.wanted) {
    state.current = room;
    state.wanted = null;
  }
  renderRooms();
  if (room === state.current) renderRoom();
}

// Earlier messages, where the server keeps them (`get_history` → `room_history {messages}`).
function askHistory(room) {
  state.socket.emit('get_history', { room }, (answer) => {
    if (!answer || !Array.isArray(answer.messages)) return; // unknown_event or another error: nothing
    const r = state.rooms.get(room);
    if (!r) return;
    const earlier = answer.messages.map((m) => ({ ...m, kind: m.url ? 'file' : 'text' }));
    const known = new Set(r.messages.map((m) => m.id));
    r.messages = earlier.filter((m) => !known.has(m.id)).concat(r.messages);
    if (room === state.current) renderRoom();
  });
}

function removeRoom(room) {
  state.rooms.delete(room);
  if (state.current === room) state.current = state.rooms.keys().next().value || null;
  renderRooms();
  renderRoom();
}

function selectRoom(room) {
  state.current = room;
  const r = state.rooms.get(room);
  if (r) r.unread = 0;
  renderRooms();
  renderRoom();
  if (state.socket) state.socket.emit('get_room_users', { room });
  $('#text').focus();
}

function renderRooms() {
  const list = $('#room-list');
  list.replaceChildren();
  for (const [name, r] of state.rooms) {
    const current = name === state.current;
    const open = el('button', { type: 'button', class: 'room', 'aria-current': current ? 'true' : 'false' },
      el('span', { class: 'hash', 'aria-hidden': 'true' }, '#'), name,
      r.unread ? el('span', { class: 'badge', 'aria-label': `${r.unread} unread` }, String(r.unread)) : '');
    open.addEventListener('click', () => selectRoom(name));
    const leave = el('button', { type: 'button', class: 'leave', 'aria-label': `Leave ${name}`, title: `Leave ${name}` }, '×');
    leave.addEventListener('click', () => state.socket.emit('leave_room', { room: name }));
    list.append(el('li', {}, open, leave));
  }
}

function renderPeople() {
  const r = state.rooms.get(state.current);
  const list = $('#people');
  list.replaceChildren();
  const users = r ? [...r.users.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
  for (const u of users) {
    const me = state.me && u.id === state.me.id;
    list.append(el('li', { title: u.id }, el('span', { class: 'dot', 'aria-hidden': 'true' }), u.name,
      me ? el('span', { class: 'muted' }, ' (you)') : ''));
  }
  $('#people-count').textContent = r ? `(${users.length})` : '';
}

function renderRoom() {
  const room = state.current;
  $('#room-title').textContent = room ? `# ${room}` : 'No room: join one';
  const list = $('#messages');
  list.replaceChildren();
  const r = room && state.rooms.get(room);
  if (r) for (const m of r.messages) list.append(messageItem(m));
  list.scrollTop = list.scrollHeight;
  renderPeople();
  setComposer(!!room && !!state.socket && state.socket.connected);
}

// ------------------------------------------------------------------------------------------
// Messages

function addMessage(room, m) {
  const r = state.rooms.get(room);
  if (!r) return;
  r.messages.push(m);
  if (r.messages.length > 500) r.messages.shift();
  if (room === state.current) appendItem(messageItem(m));
  else {
    r.unread++;
    renderRooms();
  }
}

function addNotice(room, text) {
  if (!room) return;
  addMessage(room, { kind: 'notice', text, timestamp: Date.now() });
}

function appendItem(li) {
  const list = $('#messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  if (atBottom || li.classList.contains('mine')) list.scrollTop = list.scrollHeight;
}

function messageItem(m) {
  if (m.kind === 'notice') return el('li', { class: 'notice' }, m.text);
  const mine = m.mine || (state.me && m.user && m.user.id === state.me.id);
  const who = m.user ? m.user.name : state.me ? state.me.name : '?';
  const head = el('div', { class: 'meta' }, el('span', { class: 'who' }, who), ' ',
    el('time', { datetime: new Date(m.timestamp || Date.now()).toISOString() }, formatTime(m.timestamp || Date.now())));
  const li = el('li', { class: `msg${mine ? ' mine' : ''}` }, head);
  if (m.kind === 'file') li.append(fileBody(m));
  else li.append(el('p', { class: 'text' }, m.text));
  return li;
}

function fileBody(f) {
  const href = absoluteUrl(f.url, state.server);
  const box = el('div', { class: 'file' });
  if (!/^https?:$/.test(new URL(href).protocol)) return box; // only links that fetch a file
  if (/^image\/(png|jpeg|gif|webp)$/.test(f.type)) {
    box.append(el('a', { href, target: '_blank', rel: 'noopener', class: 'preview' },
      el('img', { src: href, alt: f.name, loading: 'lazy' })));
  }
  box.append(el('a', { href, download: f.name, class: 'download' },
    el('span', { 'aria-hidden': 'true' }, '⬇ '), `${f.name}`), el('span', { class: 'muted' }, ` ${formatSize(f.size)}`));
  return box;
}

function sendText(text) {
  const room = state.current;
  const id = `c${Date.now().toString(36)}${++state.seq}`;
  const m = { kind: 'text', text, mine: true, timestamp: Date.now(), user: state.me };
  const li = messageItem(m);
  li.classList.add('sending');
  li.append(el('span', { class: 'state' }, 'sending…'));
  appendItem(li);
  state.socket.emit('send_message', { room, text, client_msg_id: id }, (answer) => {
    const tag = li.querySelector('.state');
    if (answer && answer.code) {
      li.classList.replace('sending', 'failed');
      tag.textContent = `not sent: ${answer.message}`;
      return;
    }
    li.classList.remove('sending');
    tag.remove();
    const r = state.rooms.get(room);
    if (r) r.messages.push({ ...m, id: answer.id, timestamp: answer.timestamp });
    li.querySelector('time').textContent = formatTime(answer.timestamp);
  });
}

// ------------------------------------------------------------------------------------------
// Files: Socket.IO gives no upload progress, so the bar shows the honest states: reading the file,
// sending (indeterminate), stored (full) or refused.

async function sendFile(file) {
  const room = state.current;
  if (!room || !state.socket) return;
  const bar = el('progress', { max: '1', 'aria-label': `Upload of ${file.name}` });
  const tag = el('span', { class: 'state' }, 'reading…');
  const li = el('li', { class: 'msg mine upload' },
    el('div', { class: 'meta' }, el('span', { class: 'who' }, 'Uploading'), ' ', file.name, ' ',
      el('span', { class: 'muted' }, formatSize(file.size))), bar, tag);
  appendItem(li);
  let data;
  try {
    data = await file.arrayBuffer();
  } catch (e) {
    tag.textContent = `could not read the file: ${e.message}`;
    li.classList.add('failed');
    return;
  }
  tag.textContent = 'sending…';
  bar.removeAttribute('value'); // indeterminate while it is on its way
  state.socket.emit('send_file', { room, name: file.name, type: file.type || 'application/octet-stream', data },
    (answer) => {
      if (answer && answer.code) {
        li.classList.add('failed');
        bar.value = 0;
        tag.textContent = `refused: ${answer.message}`;
        return;
      }
      bar.value = 1;
      li.remove();
      addMessage(room, { kind: 'file', mine: true, user: state.me, timestamp: Date.now(), ...answer });
    });
}

// ------------------------------------------------------------------------------------------
// Wiring

function init() {
  $('#server-url').value = serverFromPage();
  for (const r of document.querySelectorAll('input[name=mode]')) r.addEventListener('change', () => setMode(r.value));

  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const mode = document.querySelector('input[name=mode]:checked').value;
    const auth = mode === 'token' ? { token: $('#token').value.trim() } : { name: $('#name').value.trim() };
    if (state.socket) state.socket.disconnect();
    connect($('#server-url').value.trim().replace(/\/+$/, ''), auth);
  });
  $('#sign-out').addEventListener('click', signOut);

  $('#join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = $('#room-name').value.trim();
    if (!room || !state.socket) return;
    state.wanted = room; // shown once joined_room says so
    state.socket.emit('join_room', { room });
    $('#room-name').value = '';
  });

  $('#send-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('#text').value;
    if (!text.trim() || !state.current) return;
    sendText(text);
    $('#text').value = '';
  });
  $('#text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('#send-form').requestSubmit();
    }
  });
  $('#file').addEventListener('change', () => {
    for (const f of $('#file').files) sendFile(f);
    $('#file').value = '';
  });

  const zone = $('#drop-zone');
  zone.addEventListener('dragover', (ev) => {
    if (!state.current || !ev.dataTransfer || ![...ev.dataTransfer.types].includes('Files')) return;
    ev.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', (ev) => {
    if (!zone.contains(ev.relatedTarget)) zone.classList.remove('dragging');
  });
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('dragging');
    for (const f of ev.dataTransfer.files) sendFile(f);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') $('#errors').replaceChildren();
  });
}

init();
