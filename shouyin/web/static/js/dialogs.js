// Modal dialogs of the cashier page. Each returns a promise; Esc (the dialog's "cancel") resolves
// it with null. Whatever happens, the barcode field gets the focus back when a dialog closes.

import { t } from "./i18n.js";

const $ = (selector, root = document) => root.querySelector(selector);
let refocus = () => {};

/** Set what gets the focus back after every dialog (the barcode field). */
export function onDialogClosed(callback) {
  refocus = callback;
}

/** Whether any dialog is open. */
export function dialogOpen() {
  return document.querySelector("dialog[open]") !== null;
}

/** Show `dialog` modally, focusing `first`; `close` events give the focus back to the scan. */
export function show(dialog, first) {
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = "1";
    dialog.addEventListener("close", () => setTimeout(() => refocus(), 0));
  }
  if (!dialog.open) dialog.showModal();
  if (first) first.focus();
}

/** Close a dialog if it is open. */
export function hide(dialog) {
  if (dialog.open) dialog.close();
}

/** Resolve with `settle(submitter)` on submit, or null on cancel/close (one answer only). */
function answer(dialog, form, settle) {
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("close", onClose);
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const value = settle();
      if (value === undefined) return; // invalid: keep the dialog open
      done(value);
      hide(dialog);
    };
    const onClose = () => done(null);
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", onClose);
  });
}

/**
 * Ask a supervisor to approve `what` with their user name and password (and a reason when
 * `needReason`). Resolves {approver: {username, password}, reason} or null.
 */
export function askApproval(what, needReason = false) {
  const dialog = $("#approval-dialog");
  const form = $("#approval-form");
  form.reset();
  $("[data-testid=approval-what]", dialog).textContent = what;
  const reason = $(".reason", dialog);
  reason.hidden = !needReason;
  $("[data-testid=approval-reason]", dialog).required = needReason;
  $("[data-testid=approval-cancel]", dialog).onclick = () => hide(dialog);
  const result = answer(dialog, form, () => ({
    approver: { username: form.username.value.trim(), password: form.password.value },
    reason: form.reason.value.trim(),
  }));
  show(dialog, form.username);
  return result;
}

/**
 * Ask for one or two values. Resolves [value, value2] (strings) or null.
 * `check(value, value2)` returns an error text to keep the dialog open, or "".
 */
export function askInput(title, label, { value = "", label2 = "", value2 = "", check } = {}) {
  const dialog = $("#input-dialog");
  const form = $("#input-form");
  $("[data-testid=input-title]", dialog).textContent = title;
  $("[data-testid=input-label]", dialog).textContent = label;
  form.value.value = value;
  const second = $(".second", dialog);
  second.hidden = !label2;
  $("[data-testid=input-label-2]", dialog).textContent = label2;
  form.value2.value = value2;
  $("[data-testid=input-cancel]", dialog).onclick = () => hide(dialog);
  const result = answer(dialog, form, () => {
    const problem = check ? check(form.value.value, form.value2.value) : "";
    if (problem) {
      form.value.setCustomValidity(problem);
      form.value.reportValidity();
      form.value.addEventListener("input", () => form.value.setCustomValidity(""), { once: true });
      return undefined;
    }
    return [form.value.value.trim(), form.value2.value.trim()];
  });
  show(dialog, form.value);
  form.value.select();
  return result;
}

/** Show a text (receipt, report) with an optional reprint action. Resolves when closed. */
export function showText(title, text, reprint) {
  const dialog = $("#text-dialog");
  $("[data-testid=text-title]", dialog).textContent = title;
  $("[data-testid=text-body]", dialog).textContent = text;
  const button = $("[data-testid=text-reprint]", dialog);
  button.hidden = !reprint;
  button.onclick = reprint ? () => reprint() : null;
  const close = $("[data-testid=text-close]", dialog);
  close.onclick = () => hide(dialog);
  show(dialog, close);
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(), { once: true }));
}

/** Show the list of held sales; resolves with the chosen sale id, or null. */
export function chooseHeld(held, describe) {
  const dialog = $("#held-dialog");
  const list = $("[data-testid=held-list]", dialog);
  list.replaceChildren();
  $("[data-testid=held-empty]", dialog).hidden = held.length > 0;
  return new Promise((resolve) => {
    let chosen = null;
    held.forEach((sale, index) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.testid = `held-${sale.receipt_no}`;
      button.textContent = `${index + 1}. ${describe(sale)}`;
      button.onclick = () => {
        chosen = sale.sale_id;
        hide(dialog);
      };
      item.append(button);
      list.append(item);
    });
    $("[data-testid=held-close]", dialog).onclick = () => hide(dialog);
    dialog.addEventListener("close", () => resolve(chosen), { once: true });
    show(dialog, list.querySelector("button") || $("[data-testid=held-close]", dialog));
  });
}

/** Show the key list. */
export function showHelp(keys) {
  const dialog = $("#help-dialog");
  const list = $("[data-testid=help-keys]", dialog);
  list.replaceChildren(
    ...keys.map(([key, label]) => {
      const item = document.createElement("li");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      item.append(kbd, ` ${label}`);
      return item;
    }),
  );
  show(dialog, $("[data-testid=help-close]", dialog));
  return t("help.title");
}
