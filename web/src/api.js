// Talking to the service: asking for a window's graph, waiting politely
// while it is made, and fetching views of it.

// VIEW_PARAMS are the query parameters of a view, in the order the page
// writes them.
export const VIEW_PARAMS = ["group", "action", "protocol", "port", "addr", "src", "dst", "min_bytes", "top"];

// windowQuery is the query naming a window.
export function windowQuery(start, stop) {
  return new URLSearchParams({ start, stop }).toString();
}

// viewQuery is the query of a view of the window in the given format.
export function viewQuery(view, format) {
  const q = new URLSearchParams({ start: view.start, stop: view.stop });
  for (const p of VIEW_PARAMS) if (view[p]) q.set(p, view[p]);
  q.set("format", format);
  return q.toString();
}

const FIRST_DELAY = 500;
const MAX_DELAY = 5000;

// nextDelay doubles the wait up to MAX_DELAY; jitter keeps many open pages
// from polling in step.
function nextDelay(delay) {
  return Math.min(delay * 2, MAX_DELAY);
}

function jittered(delay) {
  return Math.round(delay * (0.8 + 0.4 * Math.random()));
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

async function message(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return body.message;
  } catch {
    // Not the API's error body: fall through to the status.
  }
  return `the service answered ${res.status} ${res.statusText}`.trim();
}

// obtain fetches the JSON view, asking for the graph first when it does
// not exist (once per call: a second 404 after asking is reported, not
// asked again) and polling with backoff while it is being made. report is
// told each state as it changes; obtain resolves with the view's data, or
// with null when the graph could not be had (report was told why).
export async function obtain(view, report, signal, { ask = true } = {}) {
  let delay = FIRST_DELAY;
  let asked = false;
  for (;;) {
    const since = performance.now();
    const res = await fetch("/?" + viewQuery(view, "json"), {
      headers: { Accept: "application/json" },
      signal,
    });
    switch (res.status) {
      case 200:
        report({ state: "drawing", since });
        return res.json();
      case 204:
        report({ state: "making", message: `Being made; checking again in ${(delay / 1000).toFixed(1)} s.` });
        break;
      case 404: {
        const why = await message(res);
        if (asked || !ask) {
          report({ state: "notfound", message: why });
          return null;
        }
        report({ state: "making", message: "No graph for this window yet; asking for it." });
        const post = await fetch("/?" + windowQuery(view.start, view.stop), { method: "POST", signal });
        if (post.status !== 202 && post.status !== 409) {
          report({ state: "error", message: await message(post) });
          return null;
        }
        asked = true;
        report({ state: "making", message: "Queued; waiting for the graph to be made." });
        break;
      }
      case 424:
        report({ state: "failed", message: await message(res) });
        return null;
      case 422:
        report({ state: "error", overCap: true, message: await message(res) });
        return null;
      case 503:
        report({ state: "making", message: "The service is busy; trying again shortly." });
        break;
      default:
        report({ state: "error", message: await message(res) });
        return null;
    }
    await sleep(jittered(delay), signal);
    delay = nextDelay(delay);
  }
}

// remake asks again for a window whose graph failed or went missing.
export async function remake(view, signal) {
  const post = await fetch("/?" + windowQuery(view.start, view.stop), { method: "POST", signal });
  if (post.status !== 202 && post.status !== 409) throw new Error(await message(post));
}
