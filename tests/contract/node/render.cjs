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
// jsdom has no layout, so no innerText; the renderer writes TextRuns through it.
Object.defineProperty(dom.window.HTMLElement.prototype, "innerText", {
  get() { return this.textContent; },
  set(value) { this.textContent = value; },
  configurable: true,
});

const warnings = [];
console.warn = (...args) => warnings.push(args.join(" "));
const AC = require("adaptivecards/dist/adaptivecards.js");
// A markdown processor (as in Teams) so escaped headings and literal TextRuns are put to the test.
const md = require("markdown-it")({ html: false, linkify: true });
AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
  result.outputHtml = md.render(text);
  result.didProcess = true;
};

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

// A host that does not know Action.Execute (pre-1.4 clients) must fall back to Action.Submit.
function legacyContext() {
  const registry = new AC.CardObjectRegistry();
  AC.GlobalRegistry.populateWithDefaultActions(registry);
  registry.unregister("Action.Execute");
  const context = new AC.SerializationContext();
  context.setActionRegistry(registry);
  return context;
}

function pressLegacy(json) {
  const card = new AC.AdaptiveCard();
  card.parse(json, legacyContext());
  card.render();
  return card.getAllActions().map((a) => press(card, a));
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
  const links = element.querySelectorAll("a").length;
  const markup = element.querySelectorAll("strong,em,code,h1,h2,h3,h4,blockquote,ol,ul,img").length;
  document.body.removeChild(element);
  return {
    version: card.version.toString(),
    events: describeEvents(context),
    failures,
    warnings: [...warnings],
    actions,
    refresh,
    text,
    links,
    markup,
    legacy: pressLegacy(json),
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
