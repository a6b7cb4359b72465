// Renders Adaptive Cards with the official JS renderer under jsdom (test-only).
// stdin: {"<name>": <card JSON>, ...}; stdout: {"<name>": {events, failures, actions, ...}}.
// One process renders every card, so the contract test stays fast.
"use strict";

const { JSDOM } = require("jsdom");

const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>");
// The renderer reads these browser globals when it loads and renders.
const browserNames = Object.getOwnPropertyNames(dom.window).filter(
  (name) => /^(HTML|SVG)\w*Element$|^(Node|Element|Event|KeyboardEvent|MouseEvent)$/.test(name),
);
for (const name of [...browserNames, "document", "navigator", "getComputedStyle"]) {
  if (!(name in globalThis) || name === "navigator") {
    Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true });
  }
}
globalThis.window = dom.window;

const warnings = [];
console.warn = (...args) => warnings.push(args.join(" "));
const AC = require("adaptivecards/dist/adaptivecards.js");

function describeEvents(context) {
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    events.push({ phase: e.phase, event: e.event, message: e.message });
  }
  return events;
}

function press(card, action) {
  let pressed = null;
  card.onExecuteAction = (a) => {
    pressed = { type: a.getJsonTypeName(), verb: a.verb ?? null, data: a.data ?? null };
  };
  action.execute();
  return pressed;
}

function renderOne(json) {
  warnings.length = 0;
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  card.parse(json, context);
  const failures = card.validateProperties().validationEvents.map((e) => e.message);
  const element = card.render();
  document.body.appendChild(element);
  const actions = card.getAllActions().map((a) => press(card, a));
  let refresh = null;
  if (card.refresh && card.refresh.action) {
    refresh = {
      userIds: card.refresh.userIds ?? [],
      pressed: { type: card.refresh.action.getJsonTypeName(), verb: card.refresh.action.verb,
                 data: card.refresh.action.data },
    };
  }
  const text = element.textContent;
  document.body.removeChild(element);
  return {
    version: card.version.toString(),
    events: describeEvents(context),
    failures,
    warnings: warnings.filter((w) => !w.includes("markdown")),
    actions,
    refresh,
    text,
  };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const cards = JSON.parse(input);
  const out = {};
  for (const [name, json] of Object.entries(cards)) {
    try {
      out[name] = renderOne(json);
    } catch (err) {
      out[name] = { crash: String(err && err.stack ? err.stack : err) };
    }
  }
  process.stdout.write(JSON.stringify(out));
});
