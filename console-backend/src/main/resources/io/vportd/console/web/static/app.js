// vportd web console: the device page (port list, live) and the terminal page (xterm.js).
'use strict';
(function () {
  const body = document.body;
  const page = body.dataset.page;
  const device = body.dataset.device;
  const wsBase = 'ws://' + location.host + '/ws/d/' + encodeURIComponent(device || '');

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }

  function devicePage() {
    const tbody = document.querySelector('#ports tbody');
    const events = document.getElementById('events');
    const status = document.getElementById('status');
    const ws = new WebSocket(wsBase + '/events');
    ws.onopen = () => { status.textContent = 'live'; };
    ws.onclose = () => { status.textContent = 'disconnected (reload to reconnect)'; };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type !== 'ports') return;
      tbody.replaceChildren();
      for (const p of msg.ports) {
        const tr = el('tr');
        tr.id = 'port-' + p.nr;
        tr.append(el('td', String(p.nr)), el('td', p.name || '-'),
          el('td', p.console ? 'yes' : 'no'), el('td', p.endpoint),
          el('td', p['guest-open'] ? 'open' : 'closed', p['guest-open'] ? 'yes' : ''),
          el('td', p['host-connected'] ? 'connected' : '-', p['host-connected'] ? 'yes' : ''),
          el('td', bytes(p['to-host'].bytes + p['discarded-bytes'])), el('td', bytes(p['to-guest'].bytes)),
          el('td', String(p['console-dropped-bytes'] + p['host-write-errors'])));
        const open = el('td');
        const a = el('a', p.console ? 'terminal' : 'open');
        a.href = '/d/' + encodeURIComponent(device) + '/port/' + p.nr;
        a.className = 'open-port';
        const v = el('a', 'view');
        v.href = a.href + '?role=view';
        open.append(a, ' · ', v);
        tr.append(open);
        tbody.append(tr);
      }
      for (const e of msg.events) {
        const t = new Date(e.timestamp.seconds * 1000).toISOString().substring(11, 19);
        events.prepend(el('li', t + '  ' + e.event + '  port ' + e.data.nr + (e.data.name ? ' ' + e.data.name : '')
          + (e.data.detail ? '  (' + e.data.detail + ')' : '')));
        while (events.children.length > 50) events.lastChild.remove();
      }
    };
  }

  function terminalPage() {
    const port = body.dataset.port;
    const view = new URLSearchParams(location.search).get('role') === 'view';
    const role = document.getElementById('role');
    const take = document.getElementById('take');
    const term = new Terminal({ cursorBlink: true, scrollback: 5000, disableStdin: true });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(document.getElementById('terminal'));
    fit.fit();
    window.vportdTerm = term; // for tests and the console: the terminal's buffer
    const ws = new WebSocket(wsBase + '/port/' + port + (view ? '?role=view' : ''));
    ws.binaryType = 'arraybuffer';
    const enc = new TextEncoder();
    let writer = false;
    let isConsole = false;
    function sendSize() {
      if (writer && isConsole && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
      }
    }
    function setWriter(w, input) {
      writer = w;
      term.options.disableStdin = !w || !input;
      role.textContent = w ? (input ? 'interactive' : 'interactive (this port takes no web input)') : 'read-only';
      role.className = 'status ' + (w ? 'writer' : 'viewer');
      body.dataset.role = w ? 'writer' : 'viewer';
      take.hidden = w;
      sendSize();
    }
    let input = false;
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') {
        term.write(new Uint8Array(m.data));
        return;
      }
      const msg = JSON.parse(m.data);
      if (msg.type === 'hello') {
        isConsole = msg.console;
        input = msg.input;
        document.getElementById('port-name').textContent = msg.name || '';
        setWriter(msg.writer, input);
      } else if (msg.type === 'role') {
        setWriter(msg.writer, input);
      } else if (msg.type === 'end') {
        role.textContent = 'the port was removed';
      } else if (msg.type === 'input-dropped') {
        role.textContent = 'the guest did not take ' + msg.bytes + ' typed bytes';
      }
    };
    ws.onclose = (e) => {
      role.textContent = 'disconnected' + (e.reason ? ': ' + e.reason : '') + ' (reload to reconnect)';
      role.className = 'status';
      term.options.disableStdin = true;
    };
    term.onData((d) => { if (writer && ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
    term.onResize(() => sendSize());
    window.addEventListener('resize', () => fit.fit());
    take.addEventListener('click', () => ws.send(JSON.stringify({ type: 'take' })));
  }

  if (page === 'device') devicePage();
  else if (page === 'terminal') terminalPage();
})();
