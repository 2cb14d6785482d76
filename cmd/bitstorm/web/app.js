// BitStorm's web page: a client of the daemon's Transmission RPC, and nothing more.
// It follows the torrent list through the daemon's server-sent events (/events), and
// polls torrent-get every second while they fail; it acts with torrent-add, -start,
// -stop, -remove and -set. Torrent names, file names and errors come from strangers: they are only
// ever written with textContent, never as HTML.
'use strict';

// The origin has no user name or password in it: fetch refuses a URL that has them,
// and the browser sends the credentials it was given for the page by itself.
const RPC = new URL('/transmission/rpc', location.origin).href;
const POLL_MS = 1000;
const EVENTS = new URL('/events', location.origin).href;
const SSE_RETRY_MS = 5000; // after a failed stream, polling goes on at least this long before another try

const STATUS = ['Stopped', 'Queued to verify', 'Verifying', 'Queued', 'Downloading', 'Queued to seed', 'Seeding'];
const LIST_FIELDS = ['id', 'name', 'hashString', 'status', 'error', 'errorString', 'isFinished', 'percentDone',
  'metadataPercentComplete', 'recheckProgress', 'rateDownload', 'rateUpload', 'peersConnected',
  'peersSendingToUs', 'peersGettingFromUs', 'totalSize', 'sizeWhenDone', 'leftUntilDone', 'eta', 'uploadRatio'];
const DETAIL_FIELDS = ['id', 'name', 'hashString', 'downloadDir', 'totalSize', 'sizeWhenDone', 'haveValid',
  'downloadedEver', 'uploadedEver', 'corruptEver', 'uploadRatio', 'pieceCount', 'pieceSize', 'addedDate', 'doneDate',
  'isPrivate', 'comment', 'magnetLink', 'errorString', 'peersConnected', 'peersSendingToUs', 'peersGettingFromUs',
  'peer-limit', 'files', 'fileStats', 'trackers', 'peers'];

const $ = (id) => document.getElementById(id);

// --- the RPC ----------------------------------------------------------------------

let sessionId = '';

// rpc calls method with args and returns the reply's arguments; it throws with the
// RPC's result when that is not "success". A 409 carries the session id to send
// (the daemon's defence against cross-site requests): take it and send again.
async function rpc(method, args = {}) {
  const body = JSON.stringify({ method, arguments: args });
  for (let attempt = 0; attempt < 3; attempt++) {
    const resp = await fetch(RPC, {
      method: 'POST', body, cache: 'no-store', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Transmission-Session-Id': sessionId },
    });
    if (resp.status === 409) {
      sessionId = resp.headers.get('X-Transmission-Session-Id') || '';
      continue;
    }
    if (resp.status === 401) throw new Error('not authorized: reload the page to sign in');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}: ${(await resp.text()).trim()}`);
    const reply = await resp.json();
    if (reply.result !== 'success') throw new Error(reply.result);
    return reply.arguments;
  }
  throw new Error('no session id: the daemon kept answering 409');
}

// --- formatting -------------------------------------------------------------------

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

function bytes(n) {
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) { n /= 1000; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

const rate = (n) => `${bytes(n)}/s`;

// percent rounds down, so that 100% means done.
function percent(p) {
  if (p >= 1) return '100%';
  return `${(Math.floor(p * 1000) / 10).toFixed(1)}%`;
}

function eta(s) {
  if (s < 0) return '—';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

function ratio(r) {
  if (r === -1) return '—';
  if (r === -2) return '∞';
  return r.toFixed(2);
}

const date = (unix) => (unix > 0 ? new Date(unix * 1000).toLocaleString() : '—');

function statusText(t) {
  if (t.error) return `Error: ${t.errorString}`;
  if (t.metadataPercentComplete < 1 && t.status !== 0) return 'Fetching metadata';
  if (t.status === 2) return `Verifying ${percent(t.recheckProgress)}`;
  if (t.status === 0 && t.isFinished) return 'Finished';
  return STATUS[t.status] || `status ${t.status}`;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

// --- messages ---------------------------------------------------------------------

function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
}

// act runs an RPC call for a button or form and reports its failure on the page.
async function act(what, fn) {
  try {
    await fn();
  } catch (err) {
    say(`${what}: ${err.message}`, true);
  }
  refresh();
}

// --- the torrent list -------------------------------------------------------------

const rows = new Map(); // id -> {tr, cells}
let selected = 0;       // the id shown in the detail section, 0 for none
let selectedAt = 0;     // counts select calls: a list asked for before one may lack its torrent

function newRow(t) {
  const c = {
    name: el('td', { className: 'name' }),
    bar: el('span'),
    pct: el('span', { className: 'pct' }),
    status: el('td', { className: 'status' }),
    down: el('td', { className: 'num down' }),
    up: el('td', { className: 'num up' }),
    peers: el('td', { className: 'num peers' }),
    size: el('td', { className: 'num size' }),
    eta: el('td', { className: 'num eta' }),
    ratio: el('td', { className: 'num ratio' }),
    toggle: el('button', { type: 'button', className: 'toggle' }),
  };
  c.barBox = el('span', { className: 'bar' }, c.bar);
  const tr = el('tr', { className: 'torrent' }, c.name, el('td', { className: 'progress' }, c.barBox, c.pct),
    c.status, c.down, c.up, c.peers, c.size, c.eta, c.ratio, el('td', { className: 'actions' }, c.toggle));
  tr.dataset.id = t.id;
  tr.addEventListener('click', () => select(t.id));
  c.toggle.addEventListener('click', (ev) => {
    ev.stopPropagation();
    const stopped = c.toggle.dataset.action === 'resume';
    act(stopped ? 'Resume' : 'Pause', () => rpc(stopped ? 'torrent-start' : 'torrent-stop', { ids: [t.id] }));
  });
  return { tr, c };
}

function updateRow(r, t) {
  const c = r.c;
  r.tr.dataset.hash = t.hashString;
  r.tr.dataset.status = t.status;
  r.tr.classList.toggle('selected', t.id === selected);
  c.name.textContent = t.name;
  c.bar.style.width = `${Math.min(100, t.percentDone * 100)}%`;
  c.barBox.classList.toggle('done', t.percentDone >= 1);
  c.pct.textContent = percent(t.percentDone);
  c.status.textContent = statusText(t);
  c.status.classList.toggle('error', t.error !== 0);
  c.down.textContent = rate(t.rateDownload);
  c.up.textContent = rate(t.rateUpload);
  c.peers.textContent = `${t.peersConnected}`;
  c.peers.title = `${t.peersConnected} connected, ${t.peersSendingToUs} sending to us, ${t.peersGettingFromUs} getting from us`;
  c.size.textContent = t.metadataPercentComplete < 1 ? '?' : bytes(t.sizeWhenDone);
  c.eta.textContent = eta(t.eta);
  c.ratio.textContent = ratio(t.uploadRatio);
  const stopped = t.status === 0;
  c.toggle.textContent = stopped ? 'Resume' : 'Pause';
  c.toggle.dataset.action = stopped ? 'resume' : 'pause';
}

// renderList shows torrent-get's list; source says where it came from ('sse' or 'poll').
function renderList(torrents, askedAt, source) {
  $('torrents').dataset.source = source;
  const body = $('torrent-rows');
  const seen = new Set();
  torrents.forEach((t, i) => {
    seen.add(t.id);
    let r = rows.get(t.id);
    if (!r) {
      r = newRow(t);
      rows.set(t.id, r);
    }
    updateRow(r, t);
    // In id order, as torrent-get lists them. A row in its place stays: moved, it would
    // lose a click or a focus under way.
    if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
  });
  for (const [id, r] of rows) {
    if (!seen.has(id)) {
      r.tr.remove();
      rows.delete(id);
    }
  }
  $('empty').hidden = torrents.length > 0;
  if (selected && !seen.has(selected) && askedAt === selectedAt) select(0); // removed elsewhere
}

// --- the detail section: facts, peers, files, trackers, remove ----------------------

let fileRowsOf = 0;              // the id whose files the file table shows
const pendingFiles = new Set();  // file indexes whose change is on its way

function select(id) {
  selected = id;
  selectedAt++;
  for (const [rid, r] of rows) r.tr.classList.toggle('selected', rid === id);
  $('detail').hidden = id === 0;
  $('remove-confirm').hidden = true;
  $('remove-ask').hidden = false;
  $('remove-data').checked = false;
  if (id === 0) {
    fileRowsOf = 0;
    $('file-rows').replaceChildren();
  }
  refresh();
}

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.filter(([, v]) => v !== '' && v !== undefined)
    .flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v })]));
}

function renderDetail(t) {
  $('detail').dataset.id = t.id;
  $('detail-name').textContent = t.name;
  facts($('detail-facts'), [
    ['Hash', t.hashString], ['Location', t.downloadDir],
    ['Size', `${bytes(t.totalSize)} (${bytes(t.sizeWhenDone)} wanted)`], ['Have', bytes(t.haveValid)],
    ['Downloaded', bytes(t.downloadedEver)], ['Uploaded', bytes(t.uploadedEver)],
    ['Corrupt', t.corruptEver ? bytes(t.corruptEver) : ''], ['Ratio', ratio(t.uploadRatio)],
    ['Pieces', t.pieceCount ? `${t.pieceCount} × ${bytes(t.pieceSize)}` : ''],
    ['Added', date(t.addedDate)], ['Completed', date(t.doneDate)],
    ['Private', t.isPrivate ? 'yes' : ''], ['Comment', t.comment], ['Magnet link', t.magnetLink], ['Error', t.errorString],
  ]);
  facts($('detail-peers'), [
    ['Connected', `${t.peersConnected}`], ['Sending to us', `${t.peersSendingToUs}`],
    ['Getting from us', `${t.peersGettingFromUs}`], ['Peer limit', `${t['peer-limit']}`],
  ]);
  renderFiles(t);
  renderPeers(t.peers);
  $('detail-trackers').replaceChildren(...t.trackers.map((tr) => el('li', { textContent: tr.announce })));
  if (t.trackers.length === 0) $('detail-trackers').append(el('li', { textContent: 'none (DHT or peers given)' }));
}

function renderFiles(t) {
  const body = $('file-rows');
  if (fileRowsOf !== t.id || body.children.length !== t.files.length) {
    fileRowsOf = t.id;
    pendingFiles.clear();
    body.replaceChildren(...t.files.map((f, i) => newFileRow(t.id, f, i)));
  }
  t.files.forEach((f, i) => {
    const tr = body.children[i];
    const st = t.fileStats[i];
    const done = f.length ? f.bytesCompleted / f.length : 1;
    tr.querySelector('.bar > span').style.width = `${Math.min(100, done * 100)}%`;
    tr.querySelector('.bar').classList.toggle('done', done >= 1);
    tr.querySelector('.pct').textContent = percent(done);
    if (!pendingFiles.has(i)) {
      tr.querySelector('input.wanted').checked = st.wanted;
      tr.querySelector('select.priority').value = `${st.priority}`;
    }
  });
}

// renderPeers shows the connected peers, by address as torrent-get lists them.
function renderPeers(peers) {
  const body = $('peer-rows');
  while (body.children.length > peers.length) body.lastChild.remove();
  while (body.children.length < peers.length) {
    body.append(el('tr', {}, el('td', { className: 'addr' }), el('td', { className: 'name client' }),
      el('td', { className: 'progress' }, el('span', { className: 'bar' }, el('span')), el('span', { className: 'pct' })),
      el('td', { className: 'num down' }), el('td', { className: 'num up' }), el('td', { className: 'flags' })));
  }
  peers.forEach((p, i) => {
    const tr = body.children[i];
    const addr = p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
    tr.dataset.address = p.address;
    tr.querySelector('.addr').textContent = addr;
    tr.querySelector('.client').textContent = p.clientName || '?';
    tr.querySelector('.bar > span').style.width = `${Math.min(100, p.progress * 100)}%`;
    tr.querySelector('.bar').classList.toggle('done', p.progress >= 1);
    tr.querySelector('.pct').textContent = percent(p.progress);
    tr.querySelector('.down').textContent = rate(p.rateToClient);
    tr.querySelector('.up').textContent = rate(p.rateToPeer);
    tr.querySelector('.flags').textContent = p.flagStr;
  });
  $('peers').hidden = peers.length === 0;
  $('peers-empty').hidden = peers.length > 0;
}

function newFileRow(id, f, i) {
  const wanted = el('input', { type: 'checkbox', className: 'wanted', title: 'download this file' });
  const prio = el('select', { className: 'priority' },
    el('option', { value: '1', textContent: 'High' }), el('option', { value: '0', textContent: 'Normal' }),
    el('option', { value: '-1', textContent: 'Low' }));
  const tr = el('tr', {}, el('td', {}, wanted), el('td', { className: 'name', textContent: f.name }),
    el('td', { className: 'num', textContent: bytes(f.length) }),
    el('td', { className: 'progress' }, el('span', { className: 'bar' }, el('span')), el('span', { className: 'pct' })),
    el('td', {}, prio));
  tr.dataset.index = i;
  const change = (what, args) => {
    pendingFiles.add(i);
    act(what, async () => {
      try {
        await rpc('torrent-set', { ids: [id], ...args });
      } finally {
        pendingFiles.delete(i);
      }
    });
  };
  wanted.addEventListener('change', () =>
    change(wanted.checked ? 'Want file' : 'Skip file', { [wanted.checked ? 'files-wanted' : 'files-unwanted']: [i] }));
  prio.addEventListener('change', () => {
    const key = { '1': 'priority-high', '0': 'priority-normal', '-1': 'priority-low' }[prio.value];
    change('Priority', { [key]: [i] });
  });
  return tr;
}

// --- live updates: server-sent events, else polling -----------------------------------

let polling = null;   // the refresh under way, so that two never overlap
let stream = null;    // the EventSource while it works
let sseFailedAt = -Infinity;

function connected(ok, text) {
  const conn = $('conn');
  conn.textContent = ok ? 'connected' : text;
  conn.className = ok ? 'conn ok' : 'conn bad';
}

function renderStats(stats) {
  $('total-down').textContent = rate(stats.downloadSpeed);
  $('total-up').textContent = rate(stats.uploadSpeed);
}

// showDetail renders the selected torrent's detail when the reply is about it.
function showDetail(detail) {
  if (selected && detail && detail.torrents.length === 1 && detail.torrents[0].id === selected) {
    renderDetail(detail.torrents[0]);
  }
}

// poll asks for everything the page shows: the list and totals unless the event stream
// brings them (all), and the selected torrent's detail.
async function poll(all) {
  const askedAt = selectedAt;
  try {
    const [list, stats, detail] = await Promise.all([
      all ? rpc('torrent-get', { fields: LIST_FIELDS }) : null,
      all ? rpc('session-stats') : null,
      selected ? rpc('torrent-get', { ids: [selected], fields: DETAIL_FIELDS }) : null,
    ]);
    if (all) {
      renderList(list.torrents, askedAt, 'poll');
      renderStats(stats);
    }
    showDetail(detail);
    connected(true);
  } catch (err) {
    connected(false, `RPC: ${err.message}`);
  }
}

// refresh polls now, or once more right after the poll under way.
function refresh(all = true) {
  if (polling) {
    polling.then(() => refresh(all));
    return;
  }
  polling = poll(all).finally(() => { polling = null; });
}

// openStream follows the list through the daemon's event stream. Its session id is the
// RPC's (an EventSource sends no header: it goes as a parameter); each event is the list
// and the totals; body's data-sse-events counts them. On any error the stream is closed
// and polling takes over; it is tried again SSE_RETRY_MS later.
function openStream() {
  if (stream || typeof EventSource !== 'function' || !sessionId) return;
  const url = `${EVENTS}?session-id=${encodeURIComponent(sessionId)}&fields=${LIST_FIELDS.join(',')}`;
  const es = new EventSource(url);
  stream = es;
  document.body.dataset.sse = 'connecting';
  es.onopen = () => { document.body.dataset.sse = 'open'; };
  es.onmessage = (ev) => {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch (err) {
      return;
    }
    document.body.dataset.sseEvents = `${Number(document.body.dataset.sseEvents || 0) + 1}`;
    if (data.list.result !== 'success') return;
    renderList(data.list.arguments.torrents, selectedAt, 'sse');
    if (data.stats.result === 'success') renderStats(data.stats.arguments);
    connected(true);
  };
  es.onerror = () => {
    if (stream !== es) return;
    es.close();
    stream = null;
    sseFailedAt = Date.now();
    document.body.dataset.sse = 'failed';
  };
}

// loop polls every POLL_MS: everything while there is no open stream, the selected
// torrent's detail alone while there is; and it opens the stream when it may.
function loop() {
  if (!stream && Date.now() - sseFailedAt >= SSE_RETRY_MS) openStream();
  const live = stream && document.body.dataset.sse === 'open';
  if (!live || selected) refresh(!live);
  (polling || Promise.resolve()).finally(() => setTimeout(loop, POLL_MS));
}

// --- adding ---------------------------------------------------------------------------

// base64 of a file, read in the browser: torrent-add takes the .torrent as metainfo.
function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result.slice(r.result.indexOf(',') + 1)); // after "data:…;base64,"
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function add(ev) {
  ev.preventDefault();
  const file = $('add-file').files[0];
  const magnet = $('add-magnet').value.trim();
  const args = { paused: $('add-paused').checked };
  if (!file && !magnet.startsWith('magnet:')) {
    say(magnet ? 'Add: a magnet link starts with magnet:' : 'Add: choose a .torrent file or paste a magnet link', true);
    return;
  }
  await act('Add', async () => {
    if (file) {
      args.metainfo = await readBase64(file);
    } else {
      args.filename = magnet;
    }
    const r = await rpc('torrent-add', args);
    const t = r['torrent-added'] || r['torrent-duplicate'];
    say(r['torrent-added'] ? `Added ${t.name}` : `Already there: ${t.name}`);
    $('add').reset();
    select(t.id);
  });
}

// --- removing -------------------------------------------------------------------------

function remove() {
  const id = selected;
  const del = $('remove-data').checked;
  const name = $('detail-name').textContent;
  act('Remove', async () => {
    await rpc('torrent-remove', { ids: [id], 'delete-local-data': del });
    say(del ? `Removed ${name} and its data` : `Removed ${name}; its data stays`);
    select(0);
  });
}

document.addEventListener('DOMContentLoaded', () => {
  $('add').addEventListener('submit', add);
  $('remove-ask').addEventListener('click', () => {
    $('remove-confirm').hidden = false;
    $('remove-ask').hidden = true;
  });
  $('remove-cancel').addEventListener('click', () => select(selected));
  $('remove-do').addEventListener('click', remove);
  loop();
});
