// The fleet page's HTML. Static: every piece of fleet data is added by the script with DOM
// APIs (textContent), so nothing from agents or Git is ever parsed as markup.

/** The page, linking the script and stylesheet at their versioned URLs. */
export function pageHtml(urls: { script: string; style: string; icon: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Flotilla fleet</title>
<link rel="icon" href="${urls.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${urls.style}">
<script type="module" src="${urls.script}"></script>
</head>
<body>
<header>
  <h1>Flotilla fleet</h1>
  <p id="connection" class="connection" role="status" aria-live="polite">Connecting…</p>
</header>
<div id="banner" class="banner" role="alert" hidden>Disconnected from the hub — retrying…</div>
<form id="auth" class="auth" aria-labelledby="auth-title" hidden>
  <h2 id="auth-title">API token needed</h2>
  <p>This hub shows the fleet only with credentials. Paste an API token
    (<code>flotilla token create NAME</code>); it is kept for this browser tab only.</p>
  <label for="token">API token</label>
  <input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
    aria-describedby="auth-error">
  <button type="submit">Use token</button>
  <p id="auth-error" class="error" role="alert" hidden></p>
</form>
<noscript><p class="error">This page needs JavaScript; the same answers are at /api/v1/clusters.</p></noscript>
<main>
  <section id="problems" class="problems" aria-labelledby="problems-title" hidden>
    <h2 id="problems-title">Needs attention</h2>
    <p id="problems-error" class="error" role="alert" hidden></p>
    <ul id="source-problems" class="source-problems"></ul>
    <table id="failed">
      <caption id="failed-caption">Failed bundle deployments</caption>
      <thead><tr>
        <th scope="col">Bundle</th><th scope="col">Cluster</th><th scope="col">Reason</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="glance-title">
    <h2 id="glance-title">At a glance</h2>
    <div class="glance">
      <div><h3>Clusters by state</h3><ul id="cluster-counts" class="counts"></ul></div>
      <div><h3>Bundle deployments by state</h3><ul id="deployment-counts" class="counts"></ul></div>
    </div>
  </section>
  <section id="rollouts-section" aria-labelledby="rollouts-title" hidden>
    <h2 id="rollouts-title">Rollouts</h2>
    <p id="rollouts-error" class="error" role="alert" hidden></p>
    <div id="rollouts"></div>
  </section>
  <section aria-labelledby="clusters-title">
    <h2 id="clusters-title">Clusters</h2>
    <form id="filter" class="filter" role="search">
      <label for="selector">Label selector</label>
      <input id="selector" name="selector" type="search" autocomplete="off" spellcheck="false"
        placeholder="env=prod,region in (eu,us)" aria-describedby="selector-error">
      <button type="submit">Filter</button>
    </form>
    <p id="selector-error" class="error" role="alert" hidden></p>
    <table id="clusters">
      <caption id="clusters-caption">Clusters</caption>
      <thead><tr>
        <th scope="col">Name</th><th scope="col">Labels</th><th scope="col">Connected</th>
        <th scope="col">State</th><th scope="col">Desired</th><th scope="col">Applied</th>
        <th scope="col">Last seen</th><th scope="col">Message</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="detail" aria-labelledby="detail-title" hidden>
    <h2 id="detail-title">Cluster</h2>
    <p id="detail-error" class="error" role="alert" hidden></p>
    <table id="deployments">
      <caption>Bundle deployments</caption>
      <thead><tr>
        <th scope="col">Bundle</th><th scope="col">State</th><th scope="col">Reason</th>
        <th scope="col">Objects</th><th scope="col">Drifted</th><th scope="col">Health</th>
        <th scope="col">Last error</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    <table id="history">
      <caption>Recent history (20 newest)</caption>
      <thead><tr>
        <th scope="col">When</th><th scope="col">Event</th><th scope="col">Revision</th>
        <th scope="col">Result</th><th scope="col">Message</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="bundles-title">
    <h2 id="bundles-title">Bundles</h2>
    <p id="bundles-error" class="error" role="alert" hidden></p>
    <table id="bundles">
      <caption>Deployments of each bundle by state (all clusters)</caption>
      <thead><tr id="bundles-head"><th scope="col">Bundle</th><th scope="col" class="num">Clusters</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="drift-title">
    <h2 id="drift-title">Drift in the last 24 hours</h2>
    <p id="drift-error" class="error" role="alert" hidden></p>
    <table id="drift">
      <caption>Objects changed outside Git, newest first</caption>
      <thead><tr>
        <th scope="col">When</th><th scope="col">Event</th><th scope="col">Cluster</th>
        <th scope="col">Object</th><th scope="col">Fields</th><th scope="col">Changed by</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<footer><p>Read-only view of the hub's <a href="/api/v1/clusters">HTTP API</a>.</p></footer>
</body>
</html>
`;
}
