import type { Child } from 'hono/jsx';
import { CSRF_FIELD } from './session.js';
import { asset } from './assets.js';

/** htmx settings: no eval, no inline scripts or styles, requests to this origin only, and 4xx answers shown (they carry the problem). */
const HTMX_CONFIG = JSON.stringify({
  allowEval: false,
  allowScriptTags: false,
  includeIndicatorStyles: false,
  selfRequestsOnly: true,
  historyCacheSize: 0,
  responseHandling: [
    { code: '204', swap: false },
    { code: '[23]..', swap: true },
    { code: '[45]..', swap: true, error: true },
  ],
});

export type Section = 'actors' | 'timers' | 'dead-letters' | 'integrations' | 'executions' | 'login' | 'error';

const NAV: Array<[Section, string, string]> = [
  ['actors', '/console/actors', 'Actors'],
  ['timers', '/console/timers', 'Timers'],
  ['dead-letters', '/console/dead-letters', 'Dead letters'],
  ['integrations', '/console/integrations', 'Integrations'],
  ['executions', '/console/executions', 'Playbook runs'],
];

/** The page shell: stylesheet and scripts from this server only, the CSRF token for htmx, navigation. */
export function Layout(props: { title: string; section: Section; csrf?: string; who?: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{`${props.title} · Concord console`}</title>
        <link rel="stylesheet" href={asset('console.css')} />
        <script src={asset('htmx.min.js')} defer></script>
        <script src={asset('sse.js')} defer></script>
      </head>
      <body hx-headers={props.csrf ? JSON.stringify({ 'x-csrf-token': props.csrf }) : undefined}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/console/actors">
            Concord console
          </a>
          {props.csrf ? (
            <nav aria-label="Console">
              <ul>
                {NAV.map(([s, href, label]) => (
                  <li>
                    <a href={href} aria-current={props.section === s ? 'page' : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          ) : null}
          {props.csrf ? (
            <form class="signout" method="post" action="/console/logout">
              <input type="hidden" name={CSRF_FIELD} value={props.csrf} />
              <span class="who">{props.who}</span> <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main id="main">{props.children}</main>
      </body>
    </html>
  );
}
