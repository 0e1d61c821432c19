// The operator's page over the admin API (docs/protocol.md §8). The admin token lives in the
// variable below only: never in localStorage, a cookie or the address.
import { $, el, formatTime } from './ui.js';

let token = '';
let server = location.origin;
let timer = null;

async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${server}/api/${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    credentials: 'omit',
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) { /* an answer without JSON: the status says it */ }
  return { status: res.status, data };
}

function setStatus(text, kind) {
  $('#status').textContent = text;
  $('#status').dataset.state = kind;
}

function showError(text) {
  const item = el('div', { class: 'error' }, text, el('button', { type: 'button', class: 'close', 'aria-label': 'Dismiss' }, '×'));
  item.querySelector('button').addEventListener('click', () => item.remove());
  $('#errors').append(item);
  while ($('#errors').children.length > 3) $('#errors').firstElementChild.remove();
}

function failed(what, r) {
  const why = r.status === 401 ? 'wrong or missing admin token' : r.status === 403 ? 'refused: not loopback and no token configured' : (r.data && r.data.error) || `HTTP ${r.status}`;
  showError(`${what}: ${why}`);
  setStatus(`${what} failed (${r.status})`, 'offline');
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

async function load() {
  let status, users, rooms;
  try {
    [status, users, rooms] = await Promise.all([api('GET', 'status'), api('GET', 'users'), api('GET', 'rooms')]);
  } catch (e) {
    setStatus('Server unreachable', 'offline');
    showError(`cannot reach ${server}: ${e.message}`);
    return;
  }
  for (const [what, r] of [['status', status], ['users', users], ['rooms', rooms]]) {
    if (r.status !== 200) return failed(what, r);
  }
  renderStatus(status.data);
  renderUsers(users.data.users || []);
  const list = rooms.data.rooms || [];
  const details = await Promise.all(list.map((r) => api('GET', `rooms/${encodeURIComponent(r.name)}`)));
  renderRooms(list, details.map((d) => (d.status === 200 ? d.data : null)));
  setStatus(`Loaded ${new Date().toLocaleTimeString()}`, 'online');
  $('#errors').replaceChildren(); // what failed before does not any more
}

function renderStatus(s) {
  const info = $('#server-info');
  const sc = s.scripts || {};
  const rows = [
    ['version', s.version], ['uptime', duration(s.uptime_ms || 0)], ['connections', s.connections],
    ['sessions', s.sessions], ['users', s.users], ['rooms', s.rooms], ['protocol errors', s.protocol_errors],
    ['scripts generation', sc.generation], ['reloads', `${sc.reloads_ok} ok, ${sc.reloads_failed} failed`],
    ['Lua memory', sc.lua_bytes !== undefined ? `${(sc.lua_bytes / 1048576).toFixed(1)} MiB` : ''],
    ['last reload error', sc.last_error || 'none'],
  ];
  info.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v ?? ''))]));
}

function renderUsers(users) {
  $('#users-count').textContent = `(${users.length})`;
  $('#users').replaceChildren(...users.map((u) => {
    const kick = el('button', { type: 'button', class: 'danger', 'aria-label': `Disconnect ${u.name}` }, 'Disconnect');
    kick.addEventListener('click', () => disconnect(u));
    return el('tr', {}, el('td', {}, u.name), el('td', {}, el('code', {}, u.id)), el('td', {}, String(u.connections)),
      el('td', {}, u.since ? formatTime(u.since) : ''), el('td', {}, (u.rooms || []).join(', ')), el('td', {}, kick));
  }));
}

function renderRooms(list, details) {
  $('#rooms-count').textContent = `(${list.length})`;
  $('#room-names').replaceChildren(...list.map((r) => el('option', { value: r.name })));
  $('#rooms').replaceChildren(...list.map((r, i) => {
    const members = details[i] ? details[i].users.map((u) => u.name).join(', ') : '';
    return el('tr', {}, el('td', {}, r.name), el('td', {}, String(r.users)), el('td', {}, String(r.connections)),
      el('td', {}, members));
  }));
}

async function disconnect(u) {
  const r = await api('POST', `users/${encodeURIComponent(u.id)}/disconnect`);
  if (r.status !== 200) return failed(`disconnect ${u.name}`, r);
  setStatus(`Disconnected ${u.name} (${r.data.disconnected} connection${r.data.disconnected === 1 ? '' : 's'})`, 'online');
  load();
}

function result(box, ok, text) {
  box.hidden = false;
  box.className = `result ${ok ? 'ok' : 'bad'}`;
  box.textContent = text;
}

async function reload() {
  const r = await api('POST', 'reload');
  const box = $('#reload-result');
  if (r.status === 200) result(box, true, `Reloaded: generation ${r.data.scripts.generation}, ${r.data.scripts.files} files`);
  else if (r.status === 422) result(box, false, `The scripts did not load; the previous ones keep running.\n${r.data.error}`);
  else return failed('reload', r);
  load();
}

async function emit(ev) {
  ev.preventDefault();
  const box = $('#emit-result');
  let data;
  const text = $('#emit-data').value.trim();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      result(box, false, `Data is not JSON: ${e.message}`);
      return;
    }
  }
  const room = $('#emit-room').value.trim();
  const body = { event: $('#emit-event').value.trim() };
  if (data !== undefined) body.data = data;
  const r = await api('POST', `rooms/${encodeURIComponent(room)}/emit`, body);
  if (r.status === 200) result(box, true, `Sent to ${r.data.recipients} connection${r.data.recipients === 1 ? '' : 's'}`);
  else result(box, false, `Refused (${r.status}): ${(r.data && r.data.error) || ''}`);
}

function init() {
  const q = new URLSearchParams(location.search).get('server');
  $('#server-url').value = q || location.origin;
  $('#access-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    server = $('#server-url').value.trim().replace(/\/+$/, '');
    token = $('#admin-token').value;
    load();
  });
  $('#reload').addEventListener('click', reload);
  $('#emit-form').addEventListener('submit', emit);
  $('#auto').addEventListener('change', () => {
    clearInterval(timer);
    timer = $('#auto').checked ? setInterval(load, 5000) : null;
  });
}

init();
