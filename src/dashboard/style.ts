/**
 * The dashboard's one stylesheet, served as /ui/static/dashboard.css (CSP style-src 'self': no
 * inline styles anywhere). Kept as a module rather than a .css file because the build is plain
 * `tsc`, which copies no assets into dist.
 */
export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --accent: #0550ae; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --focus: #ff8c00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -10000px; top: 0; background: var(--fg); color: #fff; padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 0; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.25rem; background: #24292f; color: #fff; }
header.top a { color: #fff; }
header.top .brand { font-weight: 700; text-decoration: none; }
header.top .muted { color: #d0d7de; font-weight: 400; }
header.top .who { margin-left: auto; font-size: .85rem; }
header.top form { display: inline; }
nav.main ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
nav.main a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; background: var(--panel); }
.card .n { display: block; font-size: 1.8rem; font-weight: 700; }
.card a { text-decoration: none; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em; word-break: break-all; }
.status { font-weight: 600; white-space: nowrap; }
.status-valid { color: var(--ok); } .status-expiring { color: var(--warn); } .status-revoked, .status-expired { color: var(--bad); }
form.filters { display: flex; flex-wrap: wrap; align-items: flex-end; gap: .75rem; padding: .75rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
label { display: block; font-weight: 600; font-size: .85rem; }
input[type=search], input[type=password], input[type=text], select { font: inherit; padding: .3rem .5rem; border: 1px solid #8c959f; border-radius: 4px; min-width: 14rem; background: #fff; }
button, .button { font: inherit; padding: .35rem .9rem; border-radius: 4px; border: 1px solid #1f2328; background: #f3f4f6; color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.danger, .button.danger { background: var(--bad); border-color: #a40e26; color: #fff; }
.notice { border-left: 4px solid var(--ok); background: #dafbe1; padding: .5rem .75rem; }
.alert { border-left: 4px solid var(--bad); background: #ffebe9; padding: .5rem .75rem; }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.pager { display: flex; gap: 1rem; align-items: center; }
details { margin: .5rem 0; } summary { cursor: pointer; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
svg.chart .bar { fill: var(--accent); } svg.chart .axis { stroke: var(--muted); } svg.chart text { fill: var(--fg); font-size: 11px; }
`;
