/**
 * The status page served at `/admin/`: one self-contained document (inline CSS and script, no
 * CDN, no build step, works offline) fed by `/admin/events`. It reads the event stream with
 * `fetch` rather than `EventSource` so it can send the bearer token.
 */
export const ADMIN_PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trellis status</title>
<style>
:root {
  --bg: #f4f6f9; --panel: #ffffff; --ink: #111827; --muted: #6b7280; --line: #e5e7eb;
  --head: #0f172a; --ok: #15803d; --ok-bg: #ecfdf3; --bad: #dc2626; --bad-bg: #fef2f2;
  --warn: #b45309; --warn-bg: #fffbeb; --iso: #7c3aed; --iso-bg: #f5f3ff; --accent: #2563eb;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: var(--head); color: #e5e7eb; padding: 12px 24px; display: flex; align-items: center; gap: 16px; position: sticky; top: 0; z-index: 5; }
header h1 { font-size: 16px; font-weight: 600; margin: 0; color: #fff; letter-spacing: .2px; }
header h1 .svc { color: #93c5fd; font-weight: 500; }
header .logo { width: 22px; height: 22px; border-radius: 5px; background: linear-gradient(135deg, #22c55e, #2563eb); }
header .spacer { flex: 1; }
header .meta { font-size: 12px; color: #94a3b8; }
.pill { display: inline-flex; align-items: center; gap: 6px; padding: 3px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #1e293b; }
.pill::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #94a3b8; }
.pill.live::before { background: #22c55e; box-shadow: 0 0 0 3px rgba(34,197,94,.25); }
.pill.reconnecting::before, .pill.connecting::before { background: #f59e0b; }
.pill.closed::before, .pill.unauthorized::before { background: #ef4444; }
main { padding: 20px 24px 40px; display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 20px; max-width: 1600px; margin: 0 auto; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }
.summary { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.stat { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.stat .label { font-size: 11px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); font-weight: 600; }
.stat .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.stat .value small { font-size: 13px; color: var(--muted); font-weight: 500; }
.stat.bad .value { color: var(--bad); } .stat.warn .value { color: var(--warn); } .stat.ok .value { color: var(--ok); }
section.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; margin-bottom: 20px; overflow: hidden; }
section.panel > h2 { margin: 0; font-size: 13px; font-weight: 650; padding: 12px 16px; border-bottom: 1px solid var(--line); display: flex; align-items: center; gap: 8px; }
section.panel > h2 .count { color: var(--muted); font-weight: 500; }
.body { padding: 14px 16px; }
.empty { color: var(--muted); font-size: 13px; padding: 14px 16px; }
.service + .service { margin-top: 18px; padding-top: 16px; border-top: 1px dashed var(--line); }
.service-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: 10px; }
.service-head .name { font-weight: 650; font-size: 15px; }
.service-head .sub { color: var(--muted); font-size: 12px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; }
.tile { border: 1px solid var(--line); border-left: 4px solid var(--ok); border-radius: 8px; padding: 9px 10px 8px; background: #fff; min-width: 0; }
.tile[data-state="ejected"] { border-left-color: var(--bad); background: var(--bad-bg); }
.tile[data-state="open"] { border-left-color: var(--bad); background: var(--bad-bg); }
.tile[data-state="half-open"] { border-left-color: #f59e0b; background: var(--warn-bg); }
.tile .top { display: flex; align-items: center; gap: 6px; }
.tile .id { font-family: var(--mono); font-size: 12.5px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1; }
.tile .url { font-family: var(--mono); font-size: 11px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tile .nums { display: flex; gap: 12px; margin-top: 6px; font-size: 12px; font-variant-numeric: tabular-nums; }
.tile .nums b { font-weight: 650; }
.tile .nums span { color: var(--muted); }
.tile .why { font-size: 11.5px; color: var(--bad); margin-top: 4px; }
.tile .actions { margin-top: 7px; }
.chip { font-size: 10.5px; font-weight: 700; text-transform: uppercase; letter-spacing: .4px; padding: 1px 7px; border-radius: 999px; white-space: nowrap; }
.chip.healthy, .chip.closed { color: var(--ok); background: var(--ok-bg); border: 1px solid #bbf7d0; }
.chip.ejected, .chip.open { color: var(--bad); background: var(--bad-bg); border: 1px solid #fecaca; }
.chip.half-open { color: var(--warn); background: var(--warn-bg); border: 1px solid #fde68a; }
.chip.isolated { color: var(--iso); background: var(--iso-bg); border: 1px solid #ddd6fe; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-size: 11px; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); font-weight: 600; padding: 8px 16px; background: #f9fafb; border-bottom: 1px solid var(--line); }
td { padding: 9px 16px; border-bottom: 1px solid var(--line); vertical-align: middle; }
tr:last-child td { border-bottom: 0; }
td.name { font-family: var(--mono); font-weight: 600; font-size: 12.5px; }
td.detail { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
td.act { text-align: right; white-space: nowrap; }
button { font: inherit; font-size: 12px; font-weight: 600; border-radius: 6px; border: 1px solid #d1d5db; background: #fff; color: var(--ink); padding: 3px 10px; cursor: pointer; }
button:hover { background: #f3f4f6; }
button.danger { color: var(--bad); border-color: #fca5a5; }
button.danger:hover { background: var(--bad-bg); }
button.primary { color: #fff; background: var(--accent); border-color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
button + button { margin-left: 6px; }
.gauge + .gauge { margin-top: 14px; }
.gauge .row { display: flex; justify-content: space-between; font-size: 12.5px; }
.gauge .row .n { font-family: var(--mono); font-weight: 600; }
.gauge .row .v { color: var(--muted); font-variant-numeric: tabular-nums; }
.gauge .kind { font-size: 10.5px; color: var(--muted); text-transform: uppercase; letter-spacing: .5px; margin-left: 6px; font-family: system-ui, sans-serif; font-weight: 600; }
.bar { height: 7px; border-radius: 4px; background: #eef0f3; margin-top: 5px; overflow: hidden; }
.bar > i { display: block; height: 100%; border-radius: 4px; background: var(--ok); transition: width .3s ease; }
.bar > i.mid { background: #f59e0b; } .bar > i.low { background: var(--bad); }
.timeline { list-style: none; margin: 0; padding: 4px 0; max-height: 520px; overflow: auto; }
.timeline li { display: grid; grid-template-columns: 64px 10px minmax(0, 1fr); gap: 8px; padding: 7px 16px; font-size: 12.5px; align-items: start; }
.timeline li + li { border-top: 1px solid #f1f2f4; }
.timeline time { color: var(--muted); font-family: var(--mono); font-size: 11.5px; padding-top: 1px; }
.timeline .dot { width: 8px; height: 8px; border-radius: 50%; margin-top: 6px; background: #9ca3af; }
.timeline .warn .dot, .timeline li.warn .dot { background: #f59e0b; } .timeline li.error .dot { background: var(--bad); } .timeline li.info .dot { background: var(--accent); }
.timeline .src { font-family: var(--mono); font-weight: 600; font-size: 12px; }
.timeline .msg { color: #374151; overflow-wrap: anywhere; }
.checks { display: flex; flex-wrap: wrap; gap: 8px 16px; font-size: 12.5px; }
.check { display: inline-flex; align-items: center; gap: 6px; font-family: var(--mono); }
.chip.pass { color: var(--ok); background: var(--ok-bg); border: 1px solid #bbf7d0; }
.chip.warn { color: var(--warn); background: var(--warn-bg); border: 1px solid #fde68a; }
.chip.fail { color: var(--bad); background: var(--bad-bg); border: 1px solid #fecaca; }
.kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; font-size: 12px; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; font-family: var(--mono); overflow-wrap: anywhere; }
.comp + .comp { margin-top: 12px; padding-top: 12px; border-top: 1px solid #f1f2f4; }
.comp .title { font-family: var(--mono); font-weight: 600; font-size: 12.5px; margin-bottom: 4px; }
#auth { display: none; gap: 8px; align-items: center; }
#auth.show { display: flex; }
#auth input { font: inherit; font-size: 12px; padding: 4px 8px; border-radius: 6px; border: 1px solid #334155; background: #0b1220; color: #e5e7eb; width: 220px; }
#toast { position: fixed; bottom: 18px; right: 18px; background: var(--head); color: #fff; padding: 9px 14px; border-radius: 8px; font-size: 13px; opacity: 0; transform: translateY(8px); transition: all .2s; pointer-events: none; max-width: 420px; }
#toast.show { opacity: 1; transform: none; }
#toast.err { background: var(--bad); }
</style>
</head>
<body>
<header>
  <div class="logo" aria-hidden="true"></div>
  <h1>Trellis <span class="svc" id="svc"></span></h1>
  <span class="pill connecting" id="conn">connecting</span>
  <div class="spacer"></div>
  <form id="auth" autocomplete="off"><input id="token" type="password" autocomplete="current-password" placeholder="admin bearer token" aria-label="admin bearer token"><button class="primary" type="submit">Connect</button></form>
  <span class="meta" id="updated"></span>
</header>
<main>
  <div class="summary" id="summary"></div>
  <div>
    <section class="panel"><h2>Services and instances <span class="count" id="svc-count"></span></h2><div id="services"></div></section>
    <section class="panel" id="routes-panel" hidden><h2>Routes and upstreams <span class="count" id="route-count"></span></h2><div id="routes"></div></section>
    <section class="panel"><h2>Circuit breakers <span class="count" id="breaker-count"></span></h2><div id="breakers"></div></section>
    <section class="panel" id="other-panel" hidden><h2>Health and other components</h2><div class="body" id="other"></div></section>
  </div>
  <div>
    <section class="panel"><h2>Budgets, bulkheads and limits</h2><div id="gauges"></div></section>
    <section class="panel"><h2>Timeline <span class="count" id="event-count"></span></h2><ul class="timeline" id="timeline"></ul></section>
  </div>
</main>
<div id="toast" role="status" aria-live="polite"></div>
<script>
(function () {
  'use strict';
  var TOKEN_KEY = 'trellis-admin-token';
  var token = '';
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) {}
  var snap = null;
  var events = new Map();
  var prev = new Map();
  var rates = new Map();
  var ended = false;
  var $ = function (id) { return document.getElementById(id); };
  var esc = function (v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  };
  var fmtMs = function (v) { return v == null ? '–' : v < 10 ? v.toFixed(1) + ' ms' : Math.round(v) + ' ms'; };
  var fmtRate = function (v) { return v == null ? '–' : v < 10 ? v.toFixed(1) + '/s' : Math.round(v) + '/s'; };
  var clock = function (t) { var d = new Date(t); return d.toTimeString().slice(0, 8); };
  function headers() { return token ? { authorization: 'Bearer ' + token } : {}; }
  function setConn(s, text) { var el = $('conn'); el.className = 'pill ' + s; el.textContent = text || s; }
  function toast(msg, err) {
    var el = $('toast'); el.textContent = msg; el.className = err ? 'show err' : 'show';
    clearTimeout(toast.t); toast.t = setTimeout(function () { el.className = ''; }, 3500);
  }
  function askToken() {
    setConn('unauthorized', 'token needed');
    $('auth').className = 'show'; $('token').focus();
  }
  $('auth').addEventListener('submit', function (ev) {
    ev.preventDefault(); token = $('token').value.trim();
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) {}
    $('auth').className = ''; connect();
  });

  function connect() {
    setConn('connecting');
    fetch('events', { headers: headers(), cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askToken(); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setConn('live');
      var reader = res.body.getReader();
      var dec = new TextDecoder();
      var buf = '';
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          buf += dec.decode(r.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) { block(buf.slice(0, i)); buf = buf.slice(i + 2); }
          return pump();
        });
      }
      return pump();
    }).catch(function () {}).then(function () {
      if (ended) return;
      if ($('conn').className.indexOf('unauthorized') >= 0) return;
      setConn('reconnecting'); setTimeout(connect, 2000);
    });
  }
  function block(text) {
    var type = 'message', data = '';
    text.split('\n').forEach(function (line) {
      if (line.indexOf('event:') === 0) type = line.slice(6).trim();
      else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
    });
    if (!data) return;
    var value; try { value = JSON.parse(data); } catch (e) { return; }
    if (type === 'snapshot') onSnapshot(value);
    else if (type === 'status') { events.set(value.seq, value); renderTimeline(); }
    else if (type === 'end') { ended = true; setConn('closed', value.reason === 'shutdown' ? 'service shut down' : 'closed'); }
  }

  function onSnapshot(s) {
    var t = s.time;
    s.components.forEach(function (c) {
      (c.instances || []).forEach(function (inst) {
        var key = c.name + ' ' + inst.id;
        var p = prev.get(key);
        if (p && t > p.t) rates.set(key, Math.max(0, (inst.requests - p.n) * 1000 / (t - p.t)));
        if (!p || t - p.t >= 900) prev.set(key, { t: t, n: inst.requests });
      });
    });
    (s.events || []).forEach(function (e) { events.set(e.seq, e); });
    snap = s;
    var t0 = performance.now();
    render();
    // Read by bench/ops: how long the last snapshot took to render, and when the first one did.
    var root = document.documentElement;
    root.setAttribute('data-render-ms', (performance.now() - t0).toFixed(2));
    if (!root.hasAttribute('data-first-render-ms')) root.setAttribute('data-first-render-ms', performance.now().toFixed(1));
  }

  function tileState(inst) {
    if (inst.ejected) return 'ejected';
    if (inst.breaker === 'open' || inst.breaker === 'half-open') return inst.breaker;
    return 'healthy';
  }
  function by(kind) { return snap.components.filter(function (c) { return kind.indexOf(c.kind) >= 0; }); }

  function render() {
    var s = snap;
    $('svc').textContent = s.service ? '· ' + s.service : '';
    document.title = (s.service ? s.service + ' · ' : '') + 'Trellis status';
    $('updated').textContent = (s.closing ? 'shutting down · ' : '') + 'updated ' + clock(s.time);
    var services = by(['service', 'upstream']);
    var breakers = by(['breaker']);
    var total = 0, ejected = 0, open = 0, half = 0;
    services.forEach(function (c) { (c.instances || []).forEach(function (i) { total++; if (i.ejected) ejected++; }); });
    breakers.forEach(function (b) { if (b.state === 'open') open++; else if (b.state === 'half-open') half++; });
    var stats = [
      ['Instances', (total - ejected) + ' <small>/ ' + total + ' healthy</small>', ejected ? 'warn' : 'ok'],
      ['Ejected', ejected, ejected ? 'bad' : ''],
      ['Breakers open', open + ' <small>/ ' + breakers.length + '</small>', open ? 'bad' : 'ok'],
      ['Half-open', half, half ? 'warn' : ''],
      ['Events', events.size, ''],
    ];
    $('summary').innerHTML = stats.map(function (x) {
      return '<div class="stat ' + x[2] + '"><div class="label">' + x[0] + '</div><div class="value">' + x[1] + '</div></div>';
    }).join('');

    $('svc-count').textContent = services.length ? services.length + '' : '';
    $('services').innerHTML = services.length ? '<div class="body">' + services.map(renderService).join('') + '</div>'
      : '<div class="empty">No service registered. Give a balancer <code>{ name, status }</code> to see its instances.</div>';

    var routes = by(['route']);
    $('routes-panel').hidden = routes.length === 0;
    $('route-count').textContent = routes.length ? routes.length + '' : '';
    $('routes').innerHTML = table(['Route', 'State', 'Detail', ''], routes.map(function (r) {
      return '<tr data-route="' + esc(r.name) + '"><td class="name">' + esc(r.name) + '</td><td>' + chip(r.state || 'healthy') + '</td><td class="detail">' + esc(brief(r, ['name', 'kind', 'state'])) + '</td><td></td></tr>';
    }));

    $('breaker-count').textContent = breakers.length ? breakers.length + '' : '';
    $('breakers').innerHTML = breakers.length ? table(['Breaker', 'State', 'Detail', ''], breakers.map(renderBreaker))
      : '<div class="empty">No breaker registered.</div>';

    var gauges = by(['budget', 'retry', 'bulkhead', 'rateLimit', 'adaptiveLimit']);
    $('gauges').innerHTML = gauges.length ? '<div class="body">' + gauges.map(renderGauge).join('') + '</div>'
      : '<div class="empty">No retry budget, bulkhead or limit registered.</div>';

    var other = by(['client', 'health', 'relay']).concat(s.components.filter(function (c) {
      return ['service', 'upstream', 'route', 'breaker', 'budget', 'retry', 'bulkhead', 'rateLimit', 'adaptiveLimit', 'client', 'health', 'relay'].indexOf(c.kind) < 0;
    }));
    $('other-panel').hidden = other.length === 0;
    $('other').innerHTML = other.map(function (c) {
      var body = c.kind === 'health' ? renderHealth(c) : kv(c);
      return '<div class="comp" data-component="' + esc(c.name) + '"><div class="title">' + esc(c.name) + ' <span class="gauge"><span class="kind">' + esc(c.kind) + '</span></span></div>' + body + '</div>';
    }).join('');
    renderTimeline();
  }

  function renderHealth(c) {
    var st = c.state === 'ready' ? 'healthy' : c.state === 'starting' ? 'half-open' : 'open';
    var checks = c.checks || {};
    var chips = Object.keys(checks).map(function (k) {
      var v = checks[k];
      return '<span class="check" data-check="' + esc(k) + '">' + chip(v === 'pass' ? 'pass' : v) + ' <span>' + esc(k) + '</span></span>';
    }).join('');
    return '<div class="checks"><span class="check">' + chip(c.state).replace('chip ' + esc(c.state), 'chip ' + st) + ' <span>' + (c.inFlight || 0) + ' in flight</span></span>' + chips + '</div>';
  }
  function renderService(c) {
    var insts = c.instances || [];
    var sub = [c.balancer, insts.length + (insts.length === 1 ? ' instance' : ' instances')].filter(Boolean).join(' · ');
    return '<div class="service" data-service="' + esc(c.name) + '"><div class="service-head"><span class="name">' + esc(c.name) + '</span><span class="sub">' + esc(sub) + '</span></div>'
      + (insts.length ? '<div class="tiles">' + insts.map(function (i) { return renderTile(c, i); }).join('') + '</div>' : '<div class="sub">no instance yet</div>') + '</div>';
  }
  function renderTile(c, i) {
    var st = tileState(i);
    var rate = rates.get(c.name + ' ' + i.id);
    var why = i.ejected ? 'ejected: ' + (i.ejectionReason || 'outlier') + (i.ejectedUntil ? ' · back at ' + clock(i.ejectedUntil) : ' · until restored') : '';
    var btn = i.ejected
      ? '<button data-action="restore" data-service="' + esc(c.name) + '" data-id="' + esc(i.id) + '">Restore</button>'
      : '<button class="danger" data-action="eject" data-service="' + esc(c.name) + '" data-id="' + esc(i.id) + '">Eject</button>';
    return '<div class="tile" data-instance="' + esc(i.id) + '" data-state="' + st + '">'
      + '<div class="top"><span class="id" title="' + esc(i.id) + '">' + esc(i.id) + '</span>' + chip(st) + '</div>'
      + '<div class="url" title="' + esc(i.url) + '">' + esc(i.url) + '</div>'
      + '<div class="nums"><span title="latency (peak EWMA or last)"><b>' + fmtMs(i.latencyMs) + '</b></span><span title="requests per second"><b>' + fmtRate(rate) + '</b> req</span><span><b>' + (i.inflight || 0) + '</b> in flight</span></div>'
      + (why ? '<div class="why">' + esc(why) + '</div>' : '')
      + (s().closing ? '' : '<div class="actions">' + btn + '</div>') + '</div>';
  }
  function s() { return snap; }
  function renderBreaker(b) {
    var st = b.isolated ? 'isolated' : b.state;
    var detail = [];
    if (b.consecutiveFailures) detail.push(b.consecutiveFailures + ' consecutive failures');
    if (b.halfOpenInMs != null && b.state === 'open' && !b.isolated) detail.push('half-open in ' + Math.ceil(b.halfOpenInMs / 1000) + ' s');
    if (b.openReason) detail.push(b.openReason);
    var dis = s().closing ? ' disabled' : '';
    return '<tr data-breaker="' + esc(b.name) + '" data-state="' + esc(b.state) + '"' + (b.isolated ? ' data-isolated="true"' : '') + '>'
      + '<td class="name">' + esc(b.name) + '</td><td>' + chip(st) + (b.isolated && b.state !== 'open' ? '' : '') + '</td>'
      + '<td class="detail">' + esc(detail.join(' · ') || '–') + '</td>'
      + '<td class="act"><button class="danger" data-action="isolate" data-breaker="' + esc(b.name) + '"' + dis + (b.isolated ? ' disabled' : '') + '>Isolate</button>'
      + '<button data-action="reset" data-breaker="' + esc(b.name) + '"' + dis + (b.state === 'closed' && !b.isolated ? ' disabled' : '') + '>Reset</button></td></tr>';
  }
  function bar(label, used, max, invert) {
    if (typeof used !== 'number' || typeof max !== 'number' || max <= 0) return '';
    var pct = Math.max(0, Math.min(100, used * 100 / max));
    var level = invert ? (pct < 20 ? 'low' : pct < 50 ? 'mid' : '') : (pct > 90 ? 'low' : pct > 70 ? 'mid' : '');
    return '<div class="row" style="margin-top:6px"><span class="v">' + esc(label) + '</span><span class="v">' + fmtNum(used) + ' / ' + fmtNum(max) + '</span></div>'
      + '<div class="bar"><i class="' + level + '" style="width:' + pct.toFixed(1) + '%"></i></div>';
  }
  function fmtNum(v) { return Math.abs(v - Math.round(v)) < 0.05 ? String(Math.round(v)) : v.toFixed(1); }
  function renderGauge(g) {
    var bars = bar('available', g.available, g.capacity, true) + bar('running', g.running, g.maxConcurrent)
      + bar('queued', g.queued, g.maxQueue) + bar('in flight', g.inflight, g.limit) + bar('remaining', g.remaining, g.limitPerWindow, true);
    return '<div class="gauge" data-gauge="' + esc(g.name) + '"><div class="row"><span class="n">' + esc(g.name) + '<span class="kind">' + esc(g.kind) + '</span></span>'
      + (g.exhausted ? chip('exhausted') : '') + '</div>' + (bars || '<div class="v" style="font-size:12px;color:var(--muted);margin-top:4px">' + esc(brief(g, ['name', 'kind'])) + '</div>') + '</div>';
  }
  function chip(st) {
    var cls = st === 'exhausted' ? 'open' : st;
    return '<span class="chip ' + esc(cls) + '">' + esc(st) + '</span>';
  }
  function table(head, rows) {
    if (!rows.length) return '';
    return '<table><thead><tr>' + head.map(function (h) { return '<th>' + h + '</th>'; }).join('') + '</tr></thead><tbody>' + rows.join('') + '</tbody></table>';
  }
  function brief(c, skip) {
    return Object.keys(c).filter(function (k) { return skip.indexOf(k) < 0 && c[k] !== null && typeof c[k] !== 'object'; })
      .map(function (k) { return k + ' ' + c[k]; }).join(' · ');
  }
  function kv(c) {
    var keys = Object.keys(c).filter(function (k) { return k !== 'name' && k !== 'kind'; });
    return '<dl class="kv">' + keys.map(function (k) {
      var v = c[k]; return '<dt>' + esc(k) + '</dt><dd>' + esc(typeof v === 'object' ? JSON.stringify(v) : v) + '</dd>';
    }).join('') + '</dl>';
  }
  function renderTimeline() {
    var list = Array.from(events.values()).sort(function (a, b) { return b.seq - a.seq; });
    if (list.length > 300) { list.slice(300).forEach(function (e) { events.delete(e.seq); }); list = list.slice(0, 300); }
    $('event-count').textContent = list.length ? list.length + '' : '';
    $('timeline').innerHTML = list.length ? list.map(function (e) {
      return '<li class="' + esc(e.severity) + '" data-event="' + esc(e.type) + '" data-source="' + esc(e.source) + '"><time>' + clock(e.time) + '</time><span class="dot"></span>'
        + '<div><span class="src">' + esc(e.source) + '</span> <span class="msg">' + esc(e.message) + '</span></div></li>';
    }).join('') : '<li class="empty" style="display:block">No event yet. State changes, ejections and controls appear here.</li>';
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest && ev.target.closest('button[data-action]');
    if (!b) return;
    var a = b.getAttribute('data-action');
    var url = b.hasAttribute('data-breaker')
      ? 'breakers/' + b.getAttribute('data-breaker').split('/').map(encodeURIComponent).join('/') + '/' + a
      : 'services/' + b.getAttribute('data-service').split('/').map(encodeURIComponent).join('/') + '/instances/' + encodeURIComponent(b.getAttribute('data-id')) + '/' + a;
    b.disabled = true;
    fetch(url, { method: 'POST', headers: headers() }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.status === 401) { askToken(); return; }
        if (!res.ok) { toast((body && body.detail) || ('HTTP ' + res.status), true); b.disabled = false; return; }
        toast(a + ' ' + body.target + ': done');
        if (body.status && snap) {
          var i = snap.components.findIndex(function (c) { return c.name === body.target || body.target.indexOf(c.name + '/') === 0; });
          if (i >= 0) { snap.components[i] = Object.assign({ name: snap.components[i].name, kind: snap.components[i].kind }, body.status); render(); }
        }
      });
    }).catch(function (e) { toast(String(e), true); b.disabled = false; });
  });
  connect();
})();
</script>
</body>
</html>
`;
