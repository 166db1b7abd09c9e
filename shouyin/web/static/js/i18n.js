// Page text in Simplified Chinese (default) or English, from /static/i18n/<lang>.json.
// Elements carry data-i18n="key" (text), data-i18n-placeholder or data-i18n-title.

const STORAGE_KEY = "shouyin.lang";
let messages = {};
let current = "zh";

/** The current language, "zh" or "en". */
export function lang() {
  return current;
}

/** The message for `key`, with {name} fields filled from `fields`; the key itself if unknown. */
export function t(key, fields = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in fields ? String(fields[name]) : `{${name}}`));
}

/** The server's message of an error (or of an outcome with zh/en) in the current language. */
export function pick(zh, en) {
  return current === "en" ? en || zh : zh || en;
}

/** Load a language's table and translate the page. */
export async function setLang(next) {
  const chosen = next === "en" ? "en" : "zh";
  const response = await fetch(`/static/i18n/${chosen}.json`, { cache: "no-cache" });
  messages = await response.json();
  current = chosen;
  localStorage.setItem(STORAGE_KEY, chosen);
  document.documentElement.lang = chosen === "en" ? "en" : "zh-CN";
  translate(document);
}

/** The language chosen last time on this browser (Chinese by default). */
export function savedLang() {
  return localStorage.getItem(STORAGE_KEY) === "en" ? "en" : "zh";
}

/** Translate every marked element under `root`. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}
