// The fleet page's stylesheet (served as a file: the CSP allows no inline style).

/** CSS of the fleet page. States are shown as text; colour only reinforces them. */
export const PAGE_CSS = `:root {
  color-scheme: light dark;
  --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --off: #6e7781; --info: #0969da;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --head: #161b22;
    --ok: #3fb950; --warn: #d29922; --bad: #f85149; --off: #8d96a0; --info: #58a6ff;
  }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1.5rem; padding: 0.75rem 1.5rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
h3 { font-size: 0.95rem; margin: 0 0 0.25rem; color: var(--muted); }
main { padding: 0 1.5rem 2rem; }
footer { padding: 0 1.5rem 1.5rem; color: var(--muted); }
a { color: var(--info); }
.connection { margin: 0; color: var(--muted); }
.connection.live::before { content: "● "; color: var(--ok); }
.connection.down::before { content: "● "; color: var(--bad); }
.banner { padding: 0.5rem 1.5rem; background: var(--bad); color: #fff; font-weight: 600; }
.banner[hidden], .error[hidden], .auth[hidden] { display: none; }
.auth { margin: 1rem 1.5rem; padding: 0.75rem 1rem; border: 1px solid var(--line); border-radius: 4px; max-width: 40rem; }
.auth h2 { margin-top: 0; }
.auth input { width: min(28rem, 70vw); padding: 0.3rem 0.5rem; font: inherit; }
.error { color: var(--bad); font-weight: 600; }
.glance { display: flex; flex-wrap: wrap; gap: 2rem; }
.counts { list-style: none; display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0; padding: 0; }
.counts li { border: 1px solid var(--line); border-radius: 4px; padding: 0.25rem 0.6rem; }
.counts .n { font-weight: 700; margin-left: 0.4rem; }
.filter { display: flex; align-items: center; gap: 0.5rem; margin-bottom: 0.5rem; }
.filter input { width: min(32rem, 60vw); padding: 0.3rem 0.5rem; font: inherit; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
caption { text-align: left; color: var(--muted); padding: 0.25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
td { overflow-wrap: anywhere; }
td.num, th.num { text-align: right; }
td.empty { color: var(--muted); font-style: italic; }
tr[aria-current="true"] td { background: var(--head); }
code { font: 12px/1.4 ui-monospace, monospace; }
.label { display: inline-block; margin: 0 0.25rem 0.1rem 0; padding: 0 0.3rem; border: 1px solid var(--line); border-radius: 3px; }
.zero { color: var(--muted); }
.state, .count { font-weight: 600; }
.state::before { content: "■ "; }
.state-Ready { color: var(--ok); }
.state-Progressing, .state-Pending, .state-Waiting, .state-Updating { color: var(--info); }
.state-AwaitingApproval, .state-Soaking, .state-Paused, .state-Superseded { color: var(--info); }
.state-Healthy, .state-Completed { color: var(--ok); }
.state-RolledBack, .state-Halted, .state-Aborted { color: var(--bad); }
.rollout { margin-bottom: 1.5rem; }
.rollout h3 { display: flex; gap: 0.25rem; align-items: baseline; }
.state-OutOfSync, .state-Drifted, .state-Degraded { color: var(--warn); }
.state-Failed { color: var(--bad); }
.state-Offline { color: var(--off); }
.problems { margin-top: 1rem; padding: 0 1rem; border: 2px solid var(--bad); border-radius: 4px; }
.problems[hidden] { display: none; }
.problems h2 { color: var(--bad); }
.source-problems { margin: 0 0 0.75rem; padding-left: 1.2rem; }
.source-problems li { margin-bottom: 0.25rem; overflow-wrap: anywhere; }
.source-problems .what { font-weight: 600; }
`;

/** The page's icon: a small SVG sail, so browsers do not ask for /favicon.ico. */
export const PAGE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M8 1v10H3z" fill="#0969da"/><path d="M9 3l4 8H9z" fill="#57606a"/><path d="M1 12h14l-2 3H3z" fill="#1b1f24"/></svg>
`;
