// The tender dialog: cash (change due), card, QR (the customer's 付款码), split tenders, live
// payment progress from the terminal, abort, and the finished sale's change and receipt.

import { api, ApiError, formatFen, parseYuan } from "./api.js";
import { hide, show } from "./dialogs.js";
import { pick, t } from "./i18n.js";

const $ = (selector, root = document) => root.querySelector(selector);
const dialog = () => $("#tender-dialog");
const form = () => $("#tender-form");

let ctx = null; // {sale, onSale, onDone, say}
let mode = "cash"; // or "qr": Enter pays by QR with the scanned code
let paying = false; // a card/QR payment is on the terminal
let cashBusy = false; // a cash request is under way: Enter again sends nothing
let cashAttempt = null; // {fen, id} of a cash request that got no answer: a retry reuses its id

function field(testid) {
  return $(`[data-testid=${testid}]`, dialog());
}

function setError(error) {
  const box = field("tender-error");
  box.hidden = !error;
  box.textContent = error ? pick(error.zh, error.en) : "";
  box.dataset.code = error ? error.code || "" : "";
}

function showRemaining(sale) {
  field("tender-remaining").textContent = sale.remaining.text;
  form().amount.value = (sale.remaining.fen / 100).toFixed(2);
}

function setQrMode(on) {
  mode = on ? "qr" : "cash";
  $(".qr-only", dialog()).hidden = !on;
  form().auth_code.value = "";
  if (on) form().auth_code.focus();
}

function setBusy(busy) {
  paying = busy;
  field("payment-progress").hidden = !busy && !field("payment-steps").children.length;
  field("payment-abort").hidden = !busy;
  for (const id of ["tender-cash", "tender-card", "tender-qr"]) field(id).disabled = busy;
}

/** A fresh id for a cash tender (the server takes the cash once per id). */
export function newTenderId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The id of a cash request of `fen`: the unanswered attempt's for the same amount (a retry),
 * a new one otherwise. */
export function cashTenderId(attempt, fen) {
  return attempt && attempt.fen === fen ? attempt.id : newTenderId();
}

/** A live step of the payment (from the event stream). */
export function progress(event) {
  if (!dialog().open) return;
  const item = document.createElement("li");
  item.textContent = pick(event.zh, event.en);
  field("payment-steps").append(item);
  field("payment-progress").hidden = false;
}

function amountFen() {
  const text = form().amount.value;
  if (!text.trim()) return null;
  const fen = parseYuan(text);
  if (fen === null || fen <= 0) {
    throw new ApiError(422, {
      error: "amount",
      message: "请输入正确的金额，例如 100 或 12.50",
      message_en: "Enter a valid amount, e.g. 100 or 12.50",
    });
  }
  return fen;
}

function finished(result) {
  ctx.onSale(result.sale);
  if (result.device_warning) {
    ctx.say("warn", `${t("device.warning")}: ${pick(result.device_warning.zh, result.device_warning.en)}`);
  }
  if (!result.completed) {
    showRemaining(result.sale);
    form().amount.focus();
    form().amount.select();
    return;
  }
  field("tender-remaining").textContent = result.sale.remaining.text;
  form().classList.add("finished");
  field("change-due").textContent = formatFen(result.change);
  field("tender-receipt").textContent = result.receipt_text || "";
  field("tender-done").hidden = false;
  field("tender-next").focus();
  ctx.onDone(result.sale);
}

async function payCash() {
  if (cashBusy) return; // a double Enter while the first request is under way
  setError(null);
  // Nothing due (free items): the sale is completed without payment
  const free = ctx.sale.state === "open" && ctx.sale.total.fen === 0 && ctx.sale.remaining.fen === 0;
  const fen = free ? 0 : amountFen();
  if (fen === null) return;
  const id = cashTenderId(cashAttempt, fen);
  cashAttempt = { fen, id };
  cashBusy = true;
  for (const button of ["tender-cash", "tender-card", "tender-qr"]) field(button).disabled = true;
  try {
    const sale = ctx.sale.sale_id;
    const result = free
      ? await api("POST", `/api/sales/${sale}/complete`)
      : await api("POST", `/api/sales/${sale}/cash`, { amount_fen: fen, tender_id: id });
    cashAttempt = null;
    finished(result);
  } catch (error) {
    // No answer (status 0): the cash may have been taken; a retry sends the same id.
    if (!(error instanceof ApiError) || error.status !== 0) cashAttempt = null;
    throw error;
  } finally {
    cashBusy = false;
    if (!paying) for (const button of ["tender-cash", "tender-card", "tender-qr"]) field(button).disabled = false;
  }
}

async function payTerminal(kind) {
  setError(null);
  const fen = amountFen();
  const body = {};
  if (fen !== null && fen !== ctx.sale.remaining.fen) body.amount_fen = fen;
  if (kind === "qr") {
    const code = form().auth_code.value.trim();
    if (code) body.auth_code = code;
  }
  field("payment-steps").replaceChildren();
  setBusy(true);
  try {
    const result = await api("POST", `/api/sales/${ctx.sale.sale_id}/${kind}`, body);
    const line = document.createElement("li");
    line.className = result.approved ? "ok" : "bad";
    line.dataset.testid = "payment-outcome";
    line.textContent = pick(result.message, result.message_en);
    field("payment-steps").append(line);
    finished(result);
  } finally {
    setBusy(false);
    setQrMode(false);
  }
}

async function run(work) {
  try {
    await work();
  } catch (error) {
    setError(error instanceof ApiError ? error : new ApiError(0, { error: "page", message: String(error) }));
  }
}

/** Open the tender dialog for `sale`. `onSale` gets every changed sale, `onDone` the
 * completed one; `say` shows page messages. */
export function openTender(sale, onSale, onDone, say) {
  ctx = { sale, onSale: (s) => { ctx.sale = s; onSale(s); }, onDone, say };
  cashAttempt = null;
  const f = form();
  f.reset();
  f.classList.remove("finished");
  setError(null);
  setQrMode(false);
  field("payment-steps").replaceChildren();
  field("payment-progress").hidden = true;
  field("tender-done").hidden = true;
  setBusy(false);
  showRemaining(sale);
  show(dialog(), f.amount);
  f.amount.select();
}

/** Wire the dialog's controls once. */
export function wireTender() {
  const f = form();
  f.addEventListener("submit", (event) => {
    event.preventDefault();
    if (paying || cashBusy) return;
    if (!field("tender-done").hidden) return hide(dialog());
    run(mode === "qr" ? () => payTerminal("qr") : payCash);
  });
  field("tender-card").onclick = () => {
    if (!paying && !cashBusy) run(() => payTerminal("card"));
  };
  field("tender-qr").onclick = () => {
    if (mode === "qr" && form().auth_code.value.trim()) run(() => payTerminal("qr"));
    else setQrMode(true);
  };
  field("tender-close").onclick = () => hide(dialog());
  field("tender-next").onclick = () => hide(dialog());
  field("payment-abort").onclick = () => abort();
  dialog().addEventListener("cancel", (event) => {
    if (paying) {
      event.preventDefault(); // Esc during a card payment asks the terminal to cancel
      abort();
    }
  });
  dialog().addEventListener("keydown", (event) => {
    if (event.altKey && (event.key === "c" || event.key === "C")) {
      event.preventDefault();
      if (!paying && !cashBusy) run(() => payTerminal("card"));
    } else if (event.altKey && (event.key === "q" || event.key === "Q")) {
      event.preventDefault();
      if (!paying) setQrMode(true);
    }
  });
}

async function abort() {
  if (!paying || !ctx) return;
  try {
    const answer = await api("POST", `/api/sales/${ctx.sale.sale_id}/abort`);
    ctx.say(answer.accepted ? "info" : "warn", t(answer.accepted ? "tender.abort_sent" : "tender.abort_refused"));
  } catch (error) {
    setError(error);
  }
}
