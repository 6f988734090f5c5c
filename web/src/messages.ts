// Messages: subscribe to channels, watch messages arrive, publish.
import { h, clear, fmtTime, indicator, toast } from "./dom";
import { MessagingClient, type Json } from "./tether";
import type { View } from "./session";

const CHANNELS_KEY = "tether.channels";
const MAX_MESSAGES = 500;

export const messagesView: View = (root, s) => {
  const ind = indicator("msg-indicator");
  const chips = h("div.chips", { testid: "channels" });
  const log = h("ol.messages", { testid: "messages", "aria-live": "polite" });
  const empty = h("li.muted.empty", {}, "Subscribe to a channel to see its messages here.");
  log.appendChild(empty);

  const client = new MessagingClient(s.token, {
    message: (m) => {
      empty.remove();
      const data = typeof m.data === "string" ? m.data : JSON.stringify(m.data, null, 2);
      const li = h(
        "li.msg",
        { testid: "message", "data-channel": m.channel },
        h(
          "div.msg-head",
          {},
          h("span.chip.small", {}, m.channel),
          h("span.msg-from", {}, m.from ?? ""),
          h("span.muted.small", {}, `#${m.seq} · ${fmtTime(new Date().toISOString())}`),
        ),
        h("pre.msg-data", {}, data),
      );
      log.prepend(li);
      while (log.children.length > MAX_MESSAGES) log.lastElementChild?.remove();
    },
    error: (m) => toast(`${m.code}: ${m.message}`, "error"),
    state: (st, info) => {
      if (st === "reconnecting" && info.retryIn !== undefined)
        ind.set("reconnecting", `reconnecting in ${Math.ceil(info.retryIn / 1000)}s`);
      else if (st === "open") ind.set("open", "connected");
      else if (st === "closed" && info.code === 4001) window.dispatchEvent(new CustomEvent("tether:unauthorized"));
      else ind.set(st);
    },
  });

  const saveChannels = () => sessionStorage.setItem(CHANNELS_KEY, JSON.stringify([...client.channels]));
  function renderChips() {
    clear(chips);
    if (client.channels.size === 0) chips.appendChild(h("span.muted.small", {}, "No subscriptions."));
    for (const c of client.channels) {
      chips.appendChild(
        h(
          "span.chip",
          { testid: "channel-chip" },
          c,
          h(
            "button.chip-x",
            {
              "aria-label": `Unsubscribe from ${c}`,
              onclick: async () => {
                await client.unsubscribe(c);
                saveChannels();
                renderChips();
              },
            },
            "×",
          ),
        ),
      );
    }
  }

  async function subscribe(c: string) {
    try {
      await client.subscribe(c);
      saveChannels();
      renderChips();
      if (!pubChannel.value) pubChannel.value = c;
    } catch (e) {
      toast((e as Error).message, "error");
    }
  }

  const subInput = h("input", { placeholder: `user:${s.info.sub}`, testid: "sub-channel", "aria-label": "Channel", autocomplete: "off" });
  const subForm = h(
    "form.inline",
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        const c = subInput.value.trim() || `user:${s.info.sub}`;
        subInput.value = "";
        void subscribe(c);
      },
    },
    subInput,
    h("button.primary", { type: "submit", testid: "sub-submit" }, "Subscribe"),
  );

  const pubChannel = h("input", { placeholder: "channel", testid: "pub-channel", "aria-label": "Channel", autocomplete: "off" });
  const pubData = h("textarea.mono", { rows: 3, testid: "pub-data", "aria-label": "Data", placeholder: '{"text": "hello"}  (JSON, or plain text)' });
  const pubForm = h(
    "form.stack",
    {
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const c = pubChannel.value.trim();
        if (!c) return;
        let data: Json = pubData.value;
        try {
          data = JSON.parse(pubData.value);
        } catch {
          /* plain text */
        }
        try {
          const seq = await client.publish(c, data);
          toast(`Published to ${c} (#${seq})`);
          pubData.value = "";
        } catch (x) {
          toast((x as Error).message, "error");
        }
      },
    },
    pubChannel,
    pubData,
    h("button.primary", { type: "submit", testid: "pub-submit" }, "Publish"),
  );

  root.appendChild(
    h(
      "div.split.messages-view",
      {},
      h(
        "aside.side",
        {},
        h("div.side-head", {}, h("h2", {}, "Channels"), ind.el),
        subForm,
        chips,
        h("h3", {}, "Publish"),
        pubForm,
        h("p.muted.small", {}, "Backends publish with POST /api/publish (admin token)."),
      ),
      h("section.pane.msg-pane", {}, h("div.pane-head", {}, h("h2.pane-title", {}, "Messages")), log),
    ),
  );
  renderChips();
  let saved: string[] = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(CHANNELS_KEY) ?? "[]");
  } catch {
    /* none */
  }
  const resubscribe = () => {
    for (const c of saved) void subscribe(c);
  };
  if (saved.length) {
    // Wait for the first connection.
    const t = setInterval(() => {
      if (client.socket.state === "open") {
        clearInterval(t);
        resubscribe();
      }
    }, 100);
    setTimeout(() => clearInterval(t), 30000);
  }
  return () => client.close();
};
