// Runs a stock @ag-ui/client HttpAgent (whose runAgent always applies the
// event verifier) against an AG-UI endpoint and returns what it assembled.
import { HttpAgent } from "@ag-ui/client";

/**
 * @param {string} url the AG-UI endpoint (POST, answers text/event-stream)
 * @param {{headers?: Record<string,string>, runId?: string, threadId?: string,
 *          initialState?: unknown, initialMessages?: unknown[],
 *          forwardedProps?: unknown, resume?: unknown[], abortOnCustom?: string}} [opts]
 *   resume: the run's resume entries; abortOnCustom: abort the run (detach)
 *   once a CUSTOM event of that name arrives.
 * @returns {Promise<{messages: unknown[], state: unknown, result: unknown,
 *          newMessages: unknown[], events: string[]}>}
 *   events lists the types of the events the agent applied, in order.
 */
export async function runAgainst(url, opts = {}) {
  const agent = new HttpAgent({
    url,
    headers: opts.headers ?? {},
    threadId: opts.threadId ?? "thread-1",
    initialState: opts.initialState,
    initialMessages: opts.initialMessages ?? [],
  });
  const events = [];
  const { result, newMessages } = await agent.runAgent(
    { runId: opts.runId, forwardedProps: opts.forwardedProps, resume: opts.resume },
    {
      onEvent: ({ event }) => {
        events.push(event.type);
        if (opts.abortOnCustom && event.type === "CUSTOM" && event.name === opts.abortOnCustom) {
          setTimeout(() => agent.abortRun(), 0);
        }
      },
    },
  );
  return { messages: agent.messages, state: agent.state, result, newMessages, events };
}
