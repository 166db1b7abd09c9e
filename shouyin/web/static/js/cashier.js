// The cashier page: sign in, open the shift, sell by scanning, tender, hold/recall, voids,
// returns, receipts, X report and 交班. Keyboard first: the barcode field always has the focus
// (a scanner types digits + Enter), every action has a key (F1 lists them), every dialog takes
// Enter / Esc and gives the focus back to the barcode field. A scan's answer carries the whole
// sale, which is rendered at once (no second request).

import { api, ApiError, parseYuan, setCsrf } from "./api.js";
import { askApproval, askInput, chooseHeld, dialogOpen, onDialogClosed, showHelp, showText } from "./dialogs.js";
import { lang, pick, savedLang, setLang, t } from "./i18n.js";
import { openReturn, wireReturn } from "./returns.js";
import { openTender, progress, wireTender } from "./tender.js";

const $ = (selector) => document.querySelector(selector);
const tid = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = { session: null, lane: null, sale: null, selected: null, lastCompleted: null, events: null, printer: null };
const FINISHED = new Set(["completed", "voided", "held"]);

// -- messages and views ------------------------------------------------------------------------
function say(kind, text, code = "") {
  const box = tid("message");
  box.hidden = !text;
  box.className = `message ${kind}`;
  box.textContent = text;
  box.dataset.code = code;
}

function sayError(error) {
  // 401 is a lost session, except a supervisor's wrong password (void, no-sale): say so.
  if (error instanceof ApiError && error.status === 401 && error.code !== "invalid_credentials") return showView("login");
  const text = error instanceof ApiError ? pick(error.zh, error.en) : String(error);
  say("error", text, error.code || "");
}

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    sayError(error);
  } finally {
    focusScan();
  }
}

function showView(name) {
  for (const view of ["login", "shift", "sale"]) $(`#${view}-view`).hidden = view !== name;
  const signedIn = name !== "login";
  for (const id of ["logout-button", "help-button", "lane-id", "cashier-name", "terminal-status"]) {
    tid(id).hidden = !signedIn;
  }
  if (name === "login") $("#login-form").username.focus();
  if (name === "shift") $("#shift-form").float.focus();
  if (name === "sale") focusScan();
  renderPrinter();
}

function focusScan() {
  if ($("#sale-view").hidden || dialogOpen()) return;
  const input = $("#scan");
  // Chromium hands the focus back to the field when a modal dialog closes, yet the field then
  // takes no typed text (the scanner's digits are lost) until it is focused anew: blur first.
  if (document.activeElement === input) input.blur();
  input.focus();
}

// -- rendering ---------------------------------------------------------------------------------
function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function quantityText(line) {
  if (line.grams !== null && line.grams !== undefined) return `${(line.grams / 1000).toFixed(3)} kg`;
  return `× ${line.quantity}`;
}

function render() {
  const sale = state.sale;
  const lines = sale ? sale.lines : [];
  const rows = lines.map((line) => {
    const row = document.createElement("tr");
    row.dataset.testid = `line-${line.line_no}`;
    row.classList.toggle("voided", line.voided);
    row.classList.toggle("selected", line.line_no === state.selected);
    row.onclick = () => {
      state.selected = line.line_no;
      render();
    };
    const discount = line.discount.fen ? `-${line.discount.text}` : "";
    row.append(
      cell(String(line.line_no)),
      cell(line.name + (line.adjustments.length ? ` (${line.adjustments.join("、")})` : "")),
      cell(quantityText(line), "num"),
      cell(line.unit_price.text, "num"),
      cell(discount, "num discount"),
      cell(line.net.text, "num"),
    );
    return row;
  });
  $("#lines-body").replaceChildren(...rows);
  tid("lines-empty").hidden = rows.length > 0;
  const selectedRow = $("#lines-body tr.selected");
  if (selectedRow) selectedRow.scrollIntoView({ block: "nearest" });
  tid("promotions").replaceChildren(
    ...(sale ? sale.promotions : []).map((p) => {
      const item = document.createElement("li");
      item.textContent = `${p.name} -${p.amount.text}`;
      return item;
    }),
  );
  tid("receipt-no").textContent = sale ? sale.receipt_no : "-";
  tid("item-count").textContent = sale ? String(sale.item_count) : "0";
  for (const key of ["subtotal", "paid", "total", "remaining"]) {
    tid(key).textContent = sale ? sale[key].text : "¥0.00";
  }
  tid("discount-total").textContent = sale ? sale.discount_total.text : "¥0.00";
}

function renderHeader() {
  const session = state.session;
  const lane = state.lane;
  if (lane) tid("store-name").textContent = lane.store_name;
  if (session) {
    tid("lane-id").textContent = `${t("header.lane")} ${session.lane_id}`;
    tid("cashier-name").textContent = session.display_name;
  }
  const terminal = lane ? lane.terminal : null;
  const chip = tid("terminal-status");
  const status = !terminal || !terminal.present ? "none" : !terminal.recovered ? "recovering" : terminal.ready ? "ready" : "offline";
  chip.dataset.state = status;
  chip.textContent = t(`terminal.${status}`);
  tid("lang-toggle").textContent = lang() === "zh" ? "EN" : "中文";
}

// The printer's paper-out (or open cover) warning stays up until the printer can print again.
const PRINTER_STOPPED = new Set(["paper_out", "cover_open"]);

function renderPrinter() {
  const box = tid("printer-warning");
  const printer = state.printer;
  const stopped = Boolean(printer && PRINTER_STOPPED.has(printer.state)) && !$("#sale-view").hidden;
  box.hidden = !stopped;
  box.dataset.state = printer && printer.state ? printer.state : "";
  box.textContent = stopped ? t(`printer.${printer.state}`) : "";
}

function setSale(sale) {
  state.sale = sale;
  if (sale && !sale.lines.some((l) => l.line_no === state.selected)) {
    const live = sale.lines.filter((l) => !l.voided);
    state.selected = live.length ? live[live.length - 1].line_no : null;
  }
  render();
}

// -- session and lane --------------------------------------------------------------------------
async function loadLane() {
  state.lane = await api("GET", "/api/lane");
  renderHeader();
  if (!state.lane.shift) return showView("shift");
  setSale(state.lane.current_sale);
  showView("sale");
  connectEvents();
  state.printer = await api("GET", "/api/lane/printer");
  renderPrinter();
}

async function start() {
  await setLang(savedLang());
  wireTender();
  wireReturn();
  onDialogClosed(focusScan);
  wire();
  try {
    state.session = await api("GET", "/api/session");
    setCsrf(state.session.csrf_token);
    await loadLane();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showView("login");
    else sayError(error);
  }
}

const TERMINAL_POLL_MS = 15000;
let polling = null;

async function pollTerminal() {
  if (!state.lane || $("#sale-view").hidden) return;
  try {
    state.lane.terminal = await api("GET", "/api/lane/terminal");
    renderHeader();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showView("login");
  }
}

function connectEvents() {
  if (state.events) return;
  if (polling === null) polling = setInterval(pollTerminal, TERMINAL_POLL_MS);
  const source = new EventSource("/api/events?lifetime=600");
  source.addEventListener("payment.progress", (e) => progress(JSON.parse(e.data)));
  source.addEventListener("lane.recovered", () => guarded(refreshLane));
  // A payment finished while this page was not the one waiting for it (reloaded mid-payment,
  // another tab): show the completed sale so that nobody charges the customer again.
  source.addEventListener("sale.completed", (e) => guarded(async () => {
    const done = JSON.parse(e.data);
    if (!state.sale || state.sale.sale_id !== done.sale_id || state.sale.state === "completed") return;
    setSale(await api("GET", `/api/sales/${done.sale_id}`));
    say("info", t("sale.completed", { receipt: done.receipt_no }));
  }));
  source.addEventListener("resync", () => guarded(async () => {
    await refreshLane();
    state.printer = await api("GET", "/api/lane/printer");
    renderPrinter();
  }));
  source.addEventListener("device.warning", (e) => {
    const data = JSON.parse(e.data);
    say("warn", pick(data.zh, data.en));
  });
  // The terminal chip follows the link live; the poll above is only the fallback.
  source.addEventListener("terminal.state", (e) => {
    const data = JSON.parse(e.data);
    const terminal = state.lane ? state.lane.terminal : null;
    if (terminal && terminal.present) {
      terminal.ready = data.connected;
      renderHeader();
    } else {
      pollTerminal(); // a terminal new on this lane: ask what it is
    }
  });
  source.addEventListener("printer.status", (e) => {
    state.printer = { ...(state.printer || {}), present: true, ...JSON.parse(e.data) };
    renderPrinter();
  });
  // A serial scanner's code (read by the server) goes where a keyboard-wedge scanner's digits
  // + Enter would: the focused dialog field, or the barcode field, through the same handler.
  source.addEventListener("scanner.code", (e) => typeScan(JSON.parse(e.data).code));
  state.events = source;
}

async function refreshLane() {
  state.lane = await api("GET", "/api/lane");
  renderHeader();
}

function typeScan(code) {
  if (typeof code !== "string" || !code) return;
  const target = document.activeElement;
  if (dialogOpen()) {
    if (target && target.tagName === "INPUT" && target.form) {
      target.value = code;
      target.form.requestSubmit();
    }
    return;
  }
  if ($("#sale-view").hidden) return;
  $("#scan").value = code;
  $("#scan-form").requestSubmit();
}

// -- selling -----------------------------------------------------------------------------------
async function ensureSale() {
  if (state.sale && !FINISHED.has(state.sale.state)) return state.sale;
  setSale(await api("POST", "/api/sales"));
  return state.sale;
}

async function scan(code) {
  const started = performance.now();
  const sale = await ensureSale();
  const result = await api("POST", `/api/sales/${sale.sale_id}/scan`, { code });
  state.selected = result.line.line_no;
  setSale(result.sale);
  say("info", `${result.line.name} ${result.line.net.text}`);
  // For the in-browser scan benchmark: how long from Enter to the rendered line.
  document.dispatchEvent(new CustomEvent("shouyin:scan-rendered", { detail: { code, ms: performance.now() - started } }));
}

function liveSale() {
  if (!state.sale || FINISHED.has(state.sale.state) || !state.sale.lines.length) {
    say("warn", t("sale.none"));
    return null;
  }
  return state.sale;
}

const actions = {
  pay() {
    const sale = liveSale();
    if (!sale) return;
    openTender(sale, setSale, (done) => {
      state.lastCompleted = done.sale_id;
      say("info", t("sale.completed", { receipt: done.receipt_no }));
      refreshLane().catch(sayError);
    }, say);
  },
  async qty() {
    const sale = liveSale();
    if (!sale || state.selected === null) return;
    const line = sale.lines.find((l) => l.line_no === state.selected);
    const answer = await askInput(t("qty.title", { name: line.name }), t("qty.label"), {
      value: String(line.quantity),
      check: (v) => (/^\d{1,4}$/.test(v) && Number(v) > 0 ? "" : t("qty.invalid")),
    });
    if (answer) setSale(await api("PUT", `/api/sales/${sale.sale_id}/lines/${line.line_no}`, { quantity: Number(answer[0]) }));
  },
  async remove() {
    const sale = liveSale();
    if (!sale || state.selected === null) return;
    setSale(await api("DELETE", `/api/sales/${sale.sale_id}/lines/${state.selected}`));
  },
  async hold() {
    const sale = liveSale();
    if (!sale) return;
    await api("POST", `/api/sales/${sale.sale_id}/hold`);
    setSale(null);
    say("info", t("held.done", { receipt: sale.receipt_no }));
    await refreshLane();
  },
  async recall() {
    if (state.sale && !FINISHED.has(state.sale.state) && state.sale.lines.length) {
      return say("warn", t("held.finish_first"));
    }
    const held = await api("GET", "/api/sales/held");
    const chosen = await chooseHeld(held, (s) => `${s.receipt_no}  ${s.item_count} ${t("held.items")}  ${s.total.text}`);
    if (chosen) setSale(await api("POST", `/api/sales/${chosen}/recall`));
  },
  async plu() {
    const answer = await askInput(t("plu.title"), t("plu.code"), {
      label2: t("plu.amount"),
      check: (v, v2) => (/^[0-9A-Za-z]{1,16}$/.test(v) && (!v2 || /^\d{1,6}$/.test(v2)) ? "" : t("plu.invalid")),
    });
    if (!answer) return;
    const sale = await ensureSale();
    const body = { plu: answer[0] };
    if (answer[1]) Object.assign(body, { grams: Number(answer[1]), quantity: Math.min(Number(answer[1]), 9999) });
    const result = await api("POST", `/api/sales/${sale.sale_id}/scan`, body);
    state.selected = result.line.line_no;
    setSale(result.sale);
  },
  async receipt() {
    const saleId = state.sale && state.sale.state === "completed" ? state.sale.sale_id : state.lastCompleted;
    if (!saleId) return say("warn", t("receipt.none"));
    const preview = await api("GET", `/api/sales/${saleId}/receipt`);
    await showText(t("receipt.title"), preview.text, () =>
      guarded(async () => {
        const copy = await api("POST", `/api/sales/${saleId}/reprint`);
        const warning = copy.device_warning;
        say(warning ? "warn" : "info", warning ? pick(warning.zh, warning.en) : t("receipt.reprinted"));
      }),
    );
  },
  async void() {
    const sale = liveSale();
    if (!sale) return;
    const approval = await askApproval(t("void.what", { receipt: sale.receipt_no, total: sale.total.text }), true);
    if (!approval) return;
    for (const tender of sale.tenders.filter((x) => !x.voided && x.ecr_ref)) {
      const result = await api("POST", `/api/sales/${sale.sale_id}/payments/${tender.ecr_ref}/void`, { approver: approval.approver });
      if (!result.approved) return say("error", pick(result.message, result.message_en));
    }
    const voided = await api("POST", `/api/sales/${sale.sale_id}/void`, approval);
    setSale(null);
    say("info", t("void.done", { receipt: voided.receipt_no }));
  },
  async noSale() {
    const approval = await askApproval(t("nosale.what"), true);
    if (!approval) return;
    const done = await api("POST", "/api/drawer/no-sale", approval);
    const warning = done.device_warning;
    if (warning) say("warn", pick(warning.zh, warning.en));
    else if (!done.drawer_opened) say("warn", t("nosale.no_drawer"));
    else say("info", t("nosale.done", { approver: approval.approver.username }));
  },
  ret() {
    openReturn((kind, text, code) => say(kind, text, code));
  },
  async xreport() {
    const report = await api("GET", "/api/shift/x-report");
    await showText(t("xreport.title"), report.text);
  },
  async closeShift() {
    const answer = await askInput(t("close.title"), t("close.counted"), {
      check: (v) => (parseYuan(v) === null ? t("amount.invalid") : ""),
    });
    if (!answer) return;
    const closed = await api("POST", "/api/shift/close", { counted_cash_fen: parseYuan(answer[0]) });
    const variance = closed.shift.variance ? closed.shift.variance.text : "";
    setSale(null);
    await showText(t("close.done", { variance }), closed.report_text);
    await loadLane();
  },
  async newSale() {
    if (state.sale && !FINISHED.has(state.sale.state) && state.sale.lines.length) return say("warn", t("sale.finish_first"));
    setSale(await api("POST", "/api/sales"));
  },
  help() {
    showHelp([...document.querySelectorAll(".keys button")].map((b) => [b.dataset.key, b.textContent.replace(b.dataset.key, "").trim()]));
  },
};

const KEYS = {
  F1: "help", F2: "qty", F3: "remove", F4: "hold", F5: "recall", F6: "plu",
  F7: "receipt", F8: "void", F9: "ret", F10: "pay", "Alt+X": "xreport", "Alt+S": "closeShift", "Alt+N": "newSale",
  "Alt+O": "noSale",
};
const BUTTONS = {
  "pay-button": "pay", "qty-button": "qty", "remove-line-button": "remove", "hold-button": "hold",
  "recall-button": "recall", "plu-button": "plu", "receipt-button": "receipt", "void-button": "void",
  "return-button": "ret", "xreport-button": "xreport", "close-shift-button": "closeShift",
  "new-sale-button": "newSale", "help-button": "help", "no-sale-button": "noSale",
};

function keyName(event) {
  if (event.altKey && event.key.length === 1) return `Alt+${event.key.toUpperCase()}`;
  return event.key;
}

function moveSelection(step) {
  const live = state.sale ? state.sale.lines.filter((l) => !l.voided) : [];
  if (!live.length) return;
  const index = live.findIndex((l) => l.line_no === state.selected);
  const next = Math.min(live.length - 1, Math.max(0, (index < 0 ? live.length : index) + step));
  state.selected = live[next].line_no;
  render();
}

function wire() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    guarded(async () => {
      state.session = await api("POST", "/api/session", { username: form.username.value.trim(), password: form.password.value });
      setCsrf(state.session.csrf_token);
      form.reset();
      say("", "");
      await loadLane();
    });
  });
  $("#shift-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const fen = parseYuan(event.target.float.value);
    if (fen === null) return say("error", t("amount.invalid"), "amount");
    guarded(async () => {
      await api("POST", "/api/shift", { opening_float_fen: fen });
      say("info", t("shift.opened"));
      await loadLane();
    });
  });
  $("#scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#scan");
    const code = input.value.trim();
    input.value = "";
    if (code) guarded(() => scan(code));
  });
  for (const [id, action] of Object.entries(BUTTONS)) tid(id).addEventListener("click", () => guarded(() => actions[action]()));
  tid("logout-button").addEventListener("click", () =>
    guarded(async () => {
      await api("DELETE", "/api/session");
      if (state.events) state.events.close();
      Object.assign(state, { session: null, lane: null, sale: null, events: null });
      render();
      showView("login");
    }),
  );
  tid("lang-toggle").addEventListener("click", () =>
    guarded(async () => {
      await setLang(lang() === "zh" ? "en" : "zh");
      renderHeader();
      render();
    }),
  );
  document.addEventListener("keydown", (event) => {
    if (dialogOpen() || $("#sale-view").hidden) return;
    const action = KEYS[keyName(event)];
    if (action) {
      event.preventDefault();
      guarded(() => actions[action]());
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      moveSelection(event.key === "ArrowUp" ? -1 : 1);
    }
  });
  // The scanner types into whatever has the focus: keep it on the barcode field.
  document.addEventListener("click", (event) => {
    if (!event.target.closest("input, select, textarea, dialog")) focusScan();
  });
  $("#scan").addEventListener("blur", () => setTimeout(() => {
    if (!document.activeElement || document.activeElement === document.body) focusScan();
  }, 0));
}

start();
