// The live activity feed of /platform/system-health.
//
// Listens to the server-sent events of api/stream and prepends each healing event to the feed,
// built with DOM calls and textContent only: nothing from an event is ever parsed as HTML.
// An event identical to the first row's (same fingerprint, outcome and strategy) replaces it and
// bumps its "×N", as the server collapses storms.
(function () {
  'use strict';

  var MAX_ROWS = 200;
  // As src/storm.rs cuts a message for its row.
  var MESSAGE_CHARS = 160;
  var feed = document.getElementById('feed');
  var live = document.getElementById('live');
  var counter = document.getElementById('live-count');
  if (!feed || !live) {
    return;
  }

  // An older page or a closed time range does not grow.
  var paused = feed.getAttribute('data-paused') === 'true';
  var filters = {};
  ['source', 'category', 'outcome', 'severity', 'fingerprint'].forEach(function (k) {
    var v = feed.getAttribute('data-' + k);
    if (v) {
      filters[k] = v;
    }
  });

  function setLive(state, text) {
    live.setAttribute('data-state', state);
    live.textContent = text;
    document.body.setAttribute('data-live', state);
  }

  if (!window.EventSource) {
    setLive('unsupported', 'live feed: not supported by this browser');
    return;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function duration(ms) {
    if (ms < 1) {
      return Math.round(ms * 1000) + ' \u00b5s';
    }
    if (ms < 10) {
      return ms.toFixed(1) + ' ms';
    }
    if (ms < 1000) {
      return Math.floor(ms) + ' ms';
    }
    if (ms < 60000) {
      return (ms / 1000).toFixed(2) + ' s';
    }
    var s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  }

  function percent(x) {
    return Math.round(Math.max(0, Math.min(1, x)) * 100) + '%';
  }

  function timeLabel(iso) {
    var t = String(iso).replace('T', ' ');
    var dot = t.indexOf('.');
    return dot >= 0 ? t.slice(0, dot) + 'Z' : t;
  }

  // As time_fmt::one_line: whitespace runs as one space, at most `max` characters, then an ellipsis.
  function oneLine(text, max) {
    var flat = String(text).split(/\s+/).filter(function (w) { return w; }).join(' ');
    var chars = Array.from(flat);
    if (chars.length <= max) {
      return flat;
    }
    return chars.slice(0, max).join('').replace(/\s+$/, '') + '\u2026';
  }

  function matches(ev) {
    return Object.keys(filters).every(function (k) {
      return String(ev[k]) === filters[k];
    });
  }

  function term(dl, name, value) {
    dl.appendChild(el('dt', null, name));
    var dd = el('dd');
    if (value instanceof Node) {
      dd.appendChild(value);
    } else {
      dd.textContent = String(value);
    }
    dl.appendChild(dd);
    return dd;
  }

  function render(ev, repeats, calls) {
    var li = el('li', 'event o-' + ev.outcome + ' fresh');
    var strategy = ev.strategy || '\u2014';
    li.setAttribute('data-fingerprint', ev.fingerprint);
    li.setAttribute('data-outcome', ev.outcome);
    li.setAttribute('data-strategy', strategy);
    li.setAttribute('data-repeats', String(repeats));
    li.setAttribute('data-calls', String(calls));
    var details = el('details');
    var summary = el('summary');
    var time = el('time', null, timeLabel(ev.time));
    time.setAttribute('datetime', ev.time);
    summary.appendChild(time);
    summary.appendChild(el('span', 'source', ev.source));
    summary.appendChild(el('span', null, ev.category));
    summary.appendChild(el('span', null, ev['class']));
    summary.appendChild(el('span', 'sev sev-' + ev.severity, ev.severity));
    summary.appendChild(el('span', null, strategy));
    summary.appendChild(el('span', 'outcome', ev.outcome));
    summary.appendChild(el('span', 'num', ev.attempts));
    summary.appendChild(el('span', 'num', duration(ev.duration_ms)));
    summary.appendChild(el('span', 'num calls', calls));
    var line = el('span', 'line');
    if (repeats > 1) {
      var badge = el('b', 'repeats', '\u00d7' + repeats);
      badge.title = repeats + ' identical events in a row (same family, outcome and strategy); the newest is shown';
      line.appendChild(badge);
    }
    line.appendChild(el('span', 'msg', oneLine(ev.message, MESSAGE_CHARS)));
    summary.appendChild(line);
    details.appendChild(summary);

    var dl = el('dl');
    term(dl, 'Message', el('pre', 'message', ev.message));
    var d = ev.diagnosis || {};
    var diagnosis = term(dl, 'Diagnosis', d.analyzer + ', ' + percent(d.confidence) +
      ' confidence: ' + d.reason + (d.never_reached ? ' (the call never reached the dependency)' : ''));
    diagnosis.className = 'diagnosis';
    if (ev.advice) {
      var a = ev.advice;
      term(dl, 'Advice', a.analyzer + ' (' + percent(a.confidence) + ') recommends ' +
        a.strategy + ': ' + a.diagnosis).className = 'advice';
    }
    var link = el('a');
    link.href = '/platform/system-health?fingerprint=' + encodeURIComponent(ev.fingerprint);
    link.appendChild(el('code', null, ev.fingerprint));
    term(dl, 'Fingerprint', link);
    var steps = el('ol', 'steps');
    (d.steps || []).forEach(function (s) {
      steps.appendChild(el('li', null, s.strategy + ': ' + s.result + ' after ' +
        duration(s.took_ms) + ' (' + s.note + ')'));
    });
    if (!steps.firstChild) {
      steps.appendChild(el('li', null, 'none applied'));
    }
    term(dl, 'Strategies', steps);
    term(dl, 'Instance', ev.instance);
    details.appendChild(dl);
    li.appendChild(details);
    return li;
  }

  var received = 0;

  function onHealing(message) {
    var ev;
    try {
      ev = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (!ev || paused || !matches(ev)) {
      return;
    }
    var empty = document.getElementById('feed-empty');
    if (empty) {
      empty.parentNode.removeChild(empty);
    }
    var first = feed.firstElementChild;
    var repeats = 1;
    var calls = Number(ev.count) || 0;
    if (first && first.getAttribute('data-fingerprint') === ev.fingerprint &&
        first.getAttribute('data-outcome') === ev.outcome &&
        first.getAttribute('data-strategy') === (ev.strategy || '\u2014')) {
      repeats += Number(first.getAttribute('data-repeats')) || 1;
      calls += Number(first.getAttribute('data-calls')) || 0;
      feed.removeChild(first);
    }
    feed.insertBefore(render(ev, repeats, calls), feed.firstChild);
    while (feed.children.length > MAX_ROWS) {
      feed.removeChild(feed.lastChild);
    }
    received += 1;
    if (counter) {
      counter.textContent = String(received);
    }
  }

  var source = new EventSource(feed.getAttribute('data-stream'));
  source.addEventListener('ready', function () {
    setLive('connected', 'live feed: connected');
  });
  source.addEventListener('healing', onHealing);
  source.addEventListener('lagged', function (message) {
    setLive('connected', 'live feed: connected (' + Number(message.data) +
      ' events skipped while this page was behind; reload to see them)');
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      setLive('closed', 'live feed: disconnected (reload the page; you may need to log in again)');
    } else {
      setLive('reconnecting', 'live feed: reconnecting\u2026');
    }
  };
}());
