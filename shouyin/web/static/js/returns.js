// The return dialog (退货): find the original sale by its receipt number, choose lines and
// quantities, the refund method, then a supervisor approves.

import { api, ApiError } from "./api.js";
import { askApproval, hide, show } from "./dialogs.js";
import { pick, t } from "./i18n.js";

const $ = (selector, root = document) => root.querySelector(selector);
const dialog = () => $("#return-dialog");
const field = (testid) => $(`[data-testid=${testid}]`, dialog());

let original = null;
let finish = null;

function setError(error) {
  const box = field("return-error");
  box.hidden = !error;
  box.textContent = error ? pick(error.zh, error.en) : "";
  box.dataset.code = error ? error.code || "" : "";
}

function showLines(sale) {
  const body = $("tbody", field("return-lines"));
  body.replaceChildren();
  for (const line of sale.lines.filter((l) => !l.voided)) {
    const row = document.createElement("tr");
    row.dataset.testid = `return-line-${line.line_no}`;
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.dataset.testid = `return-pick-${line.line_no}`;
    const qty = document.createElement("input");
    qty.type = "number";
    qty.min = "1";
    qty.max = String(line.quantity);
    qty.value = String(line.quantity);
    qty.disabled = !line.per_piece; // weighed and price-embedded lines go back whole
    qty.dataset.testid = `return-qty-${line.line_no}`;
    const cells = [pick, line.name, qty, line.net.text].map((content) => {
      const cell = document.createElement("td");
      cell.append(content);
      return cell;
    });
    row.append(...cells);
    body.append(row);
  }
  field("return-lines").hidden = false;
  $(".method", dialog()).hidden = false;
  field("return-submit").hidden = false;
  const first = body.querySelector("input[type=checkbox]");
  if (first) first.focus();
}

async function find() {
  setError(null);
  const receiptNo = $("#return-form").receipt_no.value.trim();
  if (!receiptNo) return;
  try {
    original = await api("GET", `/api/sales/by-receipt/${encodeURIComponent(receiptNo)}`);
    showLines(original);
  } catch (error) {
    setError(error);
  }
}

async function submit() {
  if (!original) return;
  setError(null);
  const items = [];
  for (const row of $("tbody", field("return-lines")).rows) {
    const [pickBox, qty] = row.querySelectorAll("input"); // the checkbox and the quantity
    if (!pickBox.checked) continue;
    const lineNo = Number(row.dataset.testid.split("-").pop());
    items.push(qty.disabled ? { line_no: lineNo } : { line_no: lineNo, quantity: Number(qty.value) });
  }
  if (!items.length) {
    setError(new ApiError(422, { error: "no_items", message: "请勾选要退的商品", message_en: "Tick the items to return" }));
    return;
  }
  const method = field("return-method").value;
  hide(dialog());
  const approval = await askApproval(t("return.approve", { receipt: original.receipt_no }), true);
  if (!approval) return;
  try {
    const result = await api("POST", "/api/returns", {
      sale_id: original.sale_id,
      items,
      approver: approval.approver,
      reason: approval.reason,
      method,
    });
    finish(result.approved ? "info" : "warn", pick(result.message, result.message_en));
  } catch (error) {
    finish("error", pick(error.zh, error.en) || String(error), error.code);
  }
}

/** Open the dialog; `done(kind, text, code)` reports the outcome on the page. */
export function openReturn(done) {
  finish = done;
  original = null;
  $("#return-form").reset();
  setError(null);
  // The last return's quantity fields would block Enter's implicit submission of the form.
  $("tbody", field("return-lines")).replaceChildren();
  field("return-lines").hidden = true;
  $(".method", dialog()).hidden = true;
  field("return-submit").hidden = true;
  show(dialog(), $("#return-form").receipt_no);
}

/** Wire the dialog's controls once. */
export function wireReturn() {
  const form = $("#return-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!original || document.activeElement === form.receipt_no) find();
    else submit();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.altKey) {
      event.preventDefault();
      submit();
    }
  });
  field("return-find").onclick = () => find();
  field("return-submit").onclick = () => submit();
  field("return-cancel").onclick = () => hide(dialog());
}
