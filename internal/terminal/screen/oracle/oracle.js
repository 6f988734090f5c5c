// The reference terminal for Tether's tests (see oracle.go): reads a JSON
// array of cases on stdin. A case is either {name, cols, rows, scrollback,
// stream_b64, snapshot_b64}: each stream (resized to new_cols x new_rows
// after resize_at bytes when given) and each snapshot fed to a fresh
// @xterm/headless terminal; or {name, scrollback, a, b}: two lists of steps
// a client takes ({reset:[cols,rows]} starts a fresh terminal,
// {resize:[cols,rows]}, {data_b64}). It prints one JSON line per case:
// {name, ok, diffs, xterm_error}, where
// diffs lists (up to 20) differences in cells (characters, width, colours,
// attributes), wrap flags, cursor, buffer, scroll region, modes, charsets,
// saved cursor and title, for the active buffer and the normal buffer's
// scrollback.
'use strict';
const { Terminal } = require('@xterm/headless');

// xterm.js parses in timers, so an exception it throws (it has bugs too:
// some resizes corrupt its line list) arrives here; it fails the case being
// fed instead of the whole run.
let failCurrent = null;
process.on('uncaughtException', e => {
  if (failCurrent) failCurrent(e);
  else throw e;
});

function write(term, data) {
  return new Promise((resolve, reject) => {
    failCurrent = reject;
    term.write(data, () => { failCurrent = null; resolve(); });
  });
}

async function feed(cols, rows, scrollback, data) {
  const term = new Terminal({ cols, rows, scrollback, allowProposedApi: true });
  let title = null;
  term.onTitleChange(t => { title = t; });
  await write(term, data);
  return { term, title: () => title };
}

function cellDesc(c) {
  if (!c) return null;
  const attrs = [];
  if (c.isBold()) attrs.push('bold');
  if (c.isItalic()) attrs.push('italic');
  if (c.isDim()) attrs.push('dim');
  if (c.isUnderline()) attrs.push('ul');
  if (c.isBlink()) attrs.push('blink');
  if (c.isInverse()) attrs.push('inverse');
  if (c.isInvisible()) attrs.push('invisible');
  if (c.isStrikethrough()) attrs.push('strike');
  if (c.isOverline()) attrs.push('overline');
  const mode = v => v.isFgRGB ? 'rgb' : v.isFgPalette ? 'p' : 'd';
  const fgm = c.isFgRGB() ? 'rgb' : c.isFgPalette() ? 'p' : 'd';
  const bgm = c.isBgRGB() ? 'rgb' : c.isBgPalette() ? 'p' : 'd';
  return JSON.stringify([c.getChars(), c.getWidth(), fgm + c.getFgColor(), bgm + c.getBgColor(), attrs.join(',')]);
}

function describe(term, title) {
  const core = term._core;
  const out = {};
  const bs = core._bufferService;
  const active = bs.buffer;
  out.buffer = term.buffer.active.type;
  out.cursor = [active.x, active.y];
  // Under the alternate screen, the normal screen's cursor decides what a
  // resize keeps of the normal screen's lines.
  if (active !== bs.buffers.normal) out.normalCursor = [bs.buffers.normal.x, bs.buffers.normal.y];
  out.cursorHidden = core.coreService.isCursorHidden;
  out.scroll = [active.scrollTop, active.scrollBottom];
  out.modes = JSON.stringify(term.modes);
  const dm = core.coreService.decPrivateModes;
  out.cursorStyle = [dm.cursorStyle, dm.cursorBlink];
  out.mouseEncoding = core.coreMouseService.activeEncoding;
  const cs = core._charsetService;
  out.charsets = JSON.stringify([cs.glevel, Array.from({ length: 4 }, (_, i) => cs._charsets[i] ? Object.values(cs._charsets[i]).join('').slice(0, 4) : ''), cs.charset ? Object.values(cs.charset).join('').slice(0, 4) : '']);
  out.title = title;
  out.saved = [Math.min(active.savedX, term.cols - 1), Math.min(Math.max(active.savedY - active.ybase, 0), term.rows - 1)];
  const lines = [];
  const buffers = [['active', term.buffer.active]];
  if (term.buffer.active.type === 'alternate') buffers.push(['normal', term.buffer.normal]);
  const cell = term.buffer.active.getNullCell();
  for (const [bname, buf] of buffers) {
    out[bname + 'Length'] = buf.length;
    for (let y = 0; y < buf.length; y++) {
      const line = buf.getLine(y);
      lines.push([bname + ' line ' + y + ' wrapped', line.isWrapped]);
      for (let x = 0; x < term.cols; x++) {
        lines.push([bname + ' cell ' + x + ',' + y, cellDesc(line.getCell(x, cell))]);
      }
    }
  }
  return { out, lines };
}

// play runs a client's steps and returns the terminal they end with.
async function play(ops, sb) {
  let cur = null;
  for (const op of ops) {
    if (op.reset) {
      if (cur) cur.term.dispose();
      cur = await feed(op.reset[0], op.reset[1], sb, '');
    } else if (op.resize) {
      cur.term.resize(op.resize[0], op.resize[1]);
    } else if (op.data_b64) {
      await write(cur.term, Buffer.from(op.data_b64, 'base64'));
    }
  }
  return cur;
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const cases = JSON.parse(input);
  for (const c of cases) {
    const stream = Buffer.from(c.stream_b64 || '', 'base64');
    const snap = Buffer.from(c.snapshot_b64 || '', 'base64');
    const sb = c.scrollback ?? 1000;
    let a, b;
    try {
      if (c.a) {
        a = await play(c.a, sb);
        b = await play(c.b, sb);
      } else if (c.resize_at !== undefined) {
        a = await feed(c.cols, c.rows, sb, stream.subarray(0, c.resize_at));
        a.term.resize(c.new_cols, c.new_rows);
        await write(a.term, stream.subarray(c.resize_at));
      } else {
        a = await feed(c.cols, c.rows, sb, stream);
      }
      if (!c.a) b = await feed(c.new_cols || c.cols, c.new_rows || c.rows, sb, snap);
    } catch (e) {
      process.stdout.write(JSON.stringify({ name: c.name, ok: false, diffs: [], xterm_error: String(e) }) + '\n');
      continue;
    }
    const da = describe(a.term, a.title());
    const db = describe(b.term, b.title());
    const diffs = [];
    for (const k of Object.keys(da.out)) {
      const va = JSON.stringify(da.out[k]);
      const vb = JSON.stringify(db.out[k]);
      if (va !== vb) diffs.push(`${k}: stream ${va} snapshot ${vb}`);
    }
    const n = Math.max(da.lines.length, db.lines.length);
    for (let i = 0; i < n && diffs.length < 20; i++) {
      const la = da.lines[i], lb = db.lines[i];
      if (!la || !lb) { diffs.push(`line list length: stream ${da.lines.length} snapshot ${db.lines.length}`); break; }
      if (la[0] !== lb[0] || la[1] !== lb[1]) diffs.push(`${la[0]}: stream ${la[1]} snapshot ${lb[0] === la[0] ? lb[1] : lb[0] + '=' + lb[1]}`);
    }
    process.stdout.write(JSON.stringify({ name: c.name, ok: diffs.length === 0, diffs: diffs.slice(0, 20) }) + '\n');
    a.term.dispose();
    b.term.dispose();
  }
}

main().catch(e => { console.error(e); process.exit(1); });
