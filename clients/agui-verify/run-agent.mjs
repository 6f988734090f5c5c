// Runs a stock @ag-ui/client HttpAgent (whose runAgent always applies the
// event verifier) against an AG-UI endpoint and returns what it assembled.
import { HttpAgent } from "@ag-ui/client";

/**
 * @param {string} url the AG-UI endpoint (POST, answers text/event-stream)
 * @param {{headers?: Record<string,string>, runId?: string, threadId?: string,
 *          initialState?: unknown, initialMessages?: unknown[],
 *          forwardedProps?: unknown}} [opts]
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
    { runId: opts.runId, forwardedProps: opts.forwardedProps },
    { onEvent: ({ event }) => void events.push(event.type) },
  );
  return { messages: agent.messages, state: agent.state, result, newMessages, events };
}
