// shouyin admin pages: sign-in, sections, pairing dialog, live terminal state (SSE).
// No framework, no build step. Data is only ever inserted as text (never as HTML).
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const state = {
    lang: localStorage.getItem("shouyin.lang") || "zh",
    csrf: "",
    user: null,
    section: "fleet",
    pairingTimer: 0,
    events: null,
    refreshTimer: 0,
  };

  // -- words and money ----------------------------------------------------------------------------
  function t(key, fields) {
    const table = window.ADMIN_TEXT[state.lang] || window.ADMIN_TEXT.zh;
    let text = table[key] || window.ADMIN_TEXT.zh[key] || key;
    for (const [k, v] of Object.entries(fields || {})) text = text.replace(`{${k}}`, String(v));
    return text;
  }

  function applyI18n() {
    document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    $("#lang").textContent = t("lang_other");
    document.title = t("title");
  }

  const yuan = (fen) => (fen === null || fen === undefined ? "" : "￥" + window.AdminChart.yuan(fen));

  // "12.3" / "12.30" / "12" -> 1230 fen, without floating point; null when not an amount.
  function parseYuan(text) {
    const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text);
    if (!m) return null;
    return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString(state.lang === "en" ? "en-GB" : "zh-CN") : "");

  // -- API ------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super((state.lang === "en" ? body.message_en : body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") init.headers["X-CSRF-Token"] = state.csrf;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status === 401) showLogin();
      throw new ApiError(response.status, data);
    }
    return data;
  }

  function showError(error) {
    const detail = error && error.body && error.body.detail ? `\n${error.body.detail}` : "";
    $("#error").textContent = error ? `${error.message}${detail}` : "";
  }

  function query(form) {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (typeof v === "string" && v.trim()) params.set(k, v.trim());
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  // -- tables ---------------------------------------------------------------------------------------
  function cell(content, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content === null || content === undefined ? "" : String(content);
    return td;
  }

  function fill(tbody, rows, build) {
    tbody.textContent = "";
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(t("no_data"));
      td.colSpan = tbody.closest("table").querySelectorAll("th").length;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const c of build(row)) tr.appendChild(c);
      tbody.appendChild(tr);
    }
  }

  function button(label, onClick, testid) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (testid) b.dataset.testid = testid;
    b.addEventListener("click", () => onClick().catch(showError));
    return b;
  }

  const isAdmin = () => state.user && state.user.role === "admin";

  // -- sections -------------------------------------------------------------------------------------
  async function loadFleet() {
    const [lanes, terminals] = await Promise.all([api("GET", "/api/admin/lanes"), api("GET", "/api/admin/terminals")]);
    fill($("#lanes-body"), lanes, (l) => [
      cell(l.lane_id), cell(l.terminals, "num"),
      cell(l.open_shift ? `${l.open_shift.cashier_name || l.open_shift.cashier_id} · ${when(l.open_shift.opened_at)}` : t("none")),
      cell(l.printer || "—", l.printer && l.printer !== "ok" ? "warn" : ""),
    ]);
    if (isAdmin()) await loadUpdates();
    fill($("#terminals-body"), terminals, (x) => {
      const pill = document.createElement("span");
      pill.className = `pill ${x.state}`;
      pill.textContent = t(`state_${x.state}`);
      const link = x.served ? (x.connected ? t("connected") : t("disconnected")) : t("not_served");
      const errors = Object.entries(x.link_errors).filter(([, n]) => n).map(([k, n]) => `${k}: ${n}`).join(", ");
      const health = healthText(x.health);
      const actions = document.createElement("span");
      if (isAdmin()) {
        actions.appendChild(button(t("pair"), () => openPairing(x.terminal_id), `pair-${x.terminal_id}`));
        if (x.state !== "revoked") actions.appendChild(button(t("revoke"), () => revokeTerminal(x.terminal_id), `revoke-${x.terminal_id}`));
      }
      const linkCell = cell(`${link}${x.link === "network" ? "" : " · " + x.link}`, x.connected ? "ok" : "");
      if (x.last_down_reason) linkCell.title = x.last_down_reason;
      return [cell(x.terminal_id), cell(x.display_name), cell(x.lane_id), cell(pill), linkCell,
        cell(when(x.last_seen_at)), cell(x.firmware_version || ""), cell(errors || "0", errors ? "warn" : ""),
        cell(health, x.health && x.health.alerts.length ? "bad" : ""), cell(actions)];
    });
  }

  function healthText(h) {
    if (!h) return "—";
    const parts = [h.online ? t("online") : t("offline")];
    if (h.paper) parts.push(`${t("paper")} ${t(`paper_${h.paper}`)}`);
    if (h.power) parts.push(`${t(`power_${h.power}`)}${h.battery_percent !== null ? ` ${h.battery_percent}%` : ""}`);
    if (h.temperature_c !== null) parts.push(`${h.temperature_c}℃`);
    for (const a of h.alerts) parts.push(`⚠ ${a.message}`);
    return parts.join(" · ");
  }

  async function loadUpdates() {
    const rollouts = await api("GET", "/api/admin/updates");
    fill($("#updates-body"), rollouts, (r) => [
      cell(`${r.kind} ${r.version}`), cell(r.model),
      cell(`${r.percent}%${r.named.length ? ` + ${t("named")} ${r.named.join(", ")}` : ""}`),
      cell(`${r.done}/${r.total} · ${Object.entries(r.counts).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ")}`),
      cell(when(r.created_at)),
    ]);
  }

  async function revokeTerminal(id) {
    if (!window.confirm(t("confirm_revoke", { id }))) return;
    await api("POST", `/api/admin/terminals/${encodeURIComponent(id)}/revoke`);
    await loadFleet();
  }

  async function loadProducts(form) {
    const found = await api("GET", `/api/admin/products${query(form)}`);
    fill($("#products-body"), found, (p) => {
      const input = document.createElement("input");
      input.value = window.AdminChart.yuan(p.price_fen).replace(/,/g, "");
      input.size = 10;
      input.placeholder = t("price_hint");
      input.setAttribute("aria-label", `${t("new_price")} ${p.sku}`);
      input.dataset.testid = `price-${p.sku}`;
      const save = button(t("save"), async () => {
        const fen = parseYuan(input.value);
        if (fen === null) throw new Error(t("bad_yuan"));
        const done = await api("PUT", `/api/admin/products/${encodeURIComponent(p.sku)}/price`, { price_fen: fen });
        showError(null);
        $("#error").textContent = t("price_changed", { sku: done.sku, old: yuan(done.old_price_fen), new: yuan(done.new_price_fen) });
        await loadProducts(form);
      }, `save-price-${p.sku}`);
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") save.click(); });
      const edit = document.createElement("span");
      edit.append(input, " ", save);
      return [cell(p.sku), cell(p.name), cell(yuan(p.price_fen), "num"), cell(yuan(p.member_price_fen), "num"),
        cell(p.unit), cell(isAdmin() ? edit : "")];
    });
  }

  async function loadUsers() {
    const users = await api("GET", "/api/admin/users");
    fill($("#users-body"), users, (u) => {
      const status = u.locked ? t("locked") : (u.active ? t("active") : t("disabled"));
      const actions = u.locked ? button(t("unlock"), async () => {
        await api("POST", `/api/admin/users/${encodeURIComponent(u.user_id)}/unlock`);
        await loadUsers();
      }, `unlock-${u.username}`) : "";
      return [cell(u.username), cell(u.display_name), cell(t(`role_${u.role}`)),
        cell(status, u.locked ? "bad" : ""), cell(when(u.last_login_at)), cell(actions)];
    });
  }

  async function loadShifts() {
    const form = $("#report-form");
    const shifts = await api("GET", `/api/admin/shifts${query(form)}`);
    fill($("#shifts-body"), shifts, (s) => [cell(s.lane_id), cell(s.cashier_name || s.cashier_id), cell(s.state),
      cell(when(s.opened_at)), cell(when(s.closed_at)), cell(yuan(s.opening_float_fen), "num"),
      cell(yuan(s.counted_cash_fen), "num")]);
  }

  async function showReport(kind) {
    const form = $("#report-form");
    if (kind === "z" && !window.confirm(t("confirm_z"))) return;
    const report = kind === "z"
      ? await api("POST", `/api/admin/reports/z${query(form)}`)
      : await api("GET", `/api/admin/reports/x${query(form)}`);
    $("#report-text").textContent = report.lines.join("\n");
  }

  async function loadJournal() {
    const sales = await api("GET", `/api/admin/journal${query($("#journal-form"))}`);
    fill($("#journal-body"), sales, (s) => [cell(s.receipt_no), cell(s.lane_id), cell(s.cashier_name || s.cashier_id),
      cell(s.state), cell(when(s.completed_at || s.opened_at)), cell(yuan(s.total_fen), "num"),
      cell(s.tenders.map((x) => `${x.kind} ${yuan(x.amount_fen)}${x.masked_pan ? " " + x.masked_pan : ""}${x.wallet ? " " + x.wallet : ""}${x.voided ? " ✕" : ""}`).join("; "))]);
  }

  async function loadHourly() {
    const data = await api("GET", `/api/admin/sales-by-hour${query($("#hourly-form"))}`);
    $("#hourly-summary").textContent = `${data.day} · ${data.lane_id || t("all")} · ${yuan(data.total_fen)} · ${data.sales_count} ${t("sales")}`;
    window.AdminChart.draw($("#hourly-chart"), data.hours, t);
  }

  function showReconciliation(r) {
    const box = $("#reconcile-result");
    box.textContent = "";
    const head = document.createElement("p");
    head.className = r.balanced ? "ok" : "bad";
    head.textContent = `${r.balanced ? t("balanced") : t("unbalanced")} · ${t("matched")} ${r.matched} · ${Object.entries(r.counts).map(([k, n]) => `${k}: ${n}`).join(", ")}`;
    box.appendChild(head);
    if (r.discrepancies.length) {
      const pre = document.createElement("pre");
      pre.className = "logs";
      pre.textContent = r.discrepancies.map((d) => [d.outcome, d.kind, d.ecr_ref || "", d.batch || "", d.trace || "", d.rrn || "",
        [d.lane_amount, d.terminal_amount, d.acquirer_amount].map((a) => (a === null ? "-" : yuan(a))).join(" / ")].join("  ")).join("\n");
      box.appendChild(pre);
    }
  }

  async function loadReconciliation() {
    try { showReconciliation(await api("GET", "/api/admin/reconciliation")); }
    catch (error) { if (error.status !== 404) throw error; }
  }

  async function loadLogs() {
    const lines = await api("GET", `/api/admin/logs${query($("#logs-form"))}`);
    $("#logs-text").textContent = lines.map((l) => `${l.at}  ${l.level.padEnd(7)} ${l.logger}  ${l.message}`).join("\n");
  }

  const LOADERS = {
    fleet: loadFleet, catalogue: async () => {}, users: loadUsers, reports: loadShifts,
    journal: loadJournal, hourly: loadHourly, reconcile: loadReconciliation, logs: loadLogs,
  };

  function select(section, focus) {
    state.section = section;
    document.querySelectorAll(".tabs [role=tab]").forEach((tab) => {
      const on = tab.dataset.section === section;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    });
    document.querySelectorAll(".section").forEach((s) => { s.hidden = s.id !== `s-${section}`; });
    showError(null);
    LOADERS[section]().catch(showError);
  }

  // -- pairing --------------------------------------------------------------------------------------
  function showPairing(p) {
    $("#pairing-terminal").textContent = p.terminal_id;
    $("#pairing-code").textContent = p.code || "";
    const qr = $("#pairing-qr");
    qr.hidden = !p.qr_png;
    if (p.qr_png && qr.dataset.src !== p.qr_png + p.code) {
      qr.dataset.src = p.qr_png + p.code;
      qr.src = `${p.qr_png}?c=${Date.now()}`;
    }
    $("#pairing-where").textContent = p.code ? `${t("where")}: ${p.where.join(", ")} · ${t("expires")} ${when(p.expires_at)}` : "";
    const status = $("#pairing-status");
    status.textContent = t(p.phase === "waiting" ? "waiting" : p.phase) + (p.reason ? ` (${p.reason})` : "");
    status.className = p.phase === "paired" ? "ok" : (p.phase === "failed" ? "bad" : "");
    if (p.phase !== "waiting") {
      clearInterval(state.pairingTimer);
      loadFleet().catch(showError);
    }
  }

  async function openPairing(id) {
    const dialog = $("#pairing");
    const p = await api("POST", `/api/admin/terminals/${encodeURIComponent(id)}/pairing`);
    $("#pairing-qr").dataset.src = "";
    showPairing(p);
    if (!dialog.open) dialog.showModal();
    $("#pairing-close").focus();
    clearInterval(state.pairingTimer);
    state.pairingTimer = setInterval(() => {
      api("GET", `/api/admin/terminals/${encodeURIComponent(id)}/pairing`).then(showPairing).catch(showError);
    }, 1000);
  }

  async function closePairing() {
    const dialog = $("#pairing");
    clearInterval(state.pairingTimer);
    const id = $("#pairing-terminal").textContent;
    if ($("#pairing-code").textContent && id) {
      await api("DELETE", `/api/admin/terminals/${encodeURIComponent(id)}/pairing`).catch(() => null);
    }
    if (dialog.open) dialog.close();
    await loadFleet();
  }

  // -- live events ----------------------------------------------------------------------------------
  const LIVE_KINDS = ["admin.pairing", "terminal.state", "terminal.status", "terminal.health",
    "terminal.alert", "terminal.link", "lane.recovered", "shift.opened", "shift.closed", "resync"];

  function startEvents() {
    if (state.events) state.events.close();
    const source = new EventSource(`/api/events?all_lanes=${isAdmin()}`);
    state.events = source;
    source.addEventListener("open", () => $("#live").classList.add("on"));
    source.addEventListener("error", () => $("#live").classList.remove("on"));
    const refresh = () => {
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(() => { if (state.section === "fleet") loadFleet().catch(showError); }, 150);
    };
    for (const kind of LIVE_KINDS) source.addEventListener(kind, refresh);
  }

  // -- session --------------------------------------------------------------------------------------
  function showLogin() {
    $("#app").hidden = true;
    $("#login").hidden = false;
    if (state.events) state.events.close();
    $("#login-form [name=username]").focus();
  }

  function start(session) {
    state.user = session;
    state.csrf = session.csrf_token;
    $("#who").textContent = `${session.display_name} · ${t(`role_${session.role}`)} · ${session.lane_id}`;
    document.querySelectorAll("[data-admin]").forEach((node) => { node.hidden = session.role !== "admin"; });
    $("#login").hidden = true;
    $("#app").hidden = false;
    startEvents();
    select(state.section, false);
  }

  async function boot() {
    applyI18n();
    try { start(await api("GET", "/api/session")); }
    catch (error) { showLogin(); }
  }

  // -- wiring ---------------------------------------------------------------------------------------
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const session = await api("POST", "/api/session", {
        username: form.username.value, password: form.password.value,
      });
      form.password.value = "";
      $("#login-error").textContent = "";
      if (session.role === "cashier") {
        // The admin pages are for supervisors and admins: end the session just made.
        state.csrf = session.csrf_token;
        await api("DELETE", "/api/session").catch(() => null);
        $("#login-error").textContent = t("not_allowed");
        return;
      }
      start(session);
    } catch (error) {
      $("#login-error").textContent = error.message;
    }
  });
  $("#logout").addEventListener("click", async () => {
    await api("DELETE", "/api/session").catch(() => null);
    showLogin();
  });
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("shouyin.lang", state.lang);
    applyI18n();
    if (state.user) start(state.user);
  });
  document.querySelectorAll(".tabs [role=tab]").forEach((tab) => {
    tab.addEventListener("click", () => select(tab.dataset.section, false));
  });
  $(".tabs").addEventListener("keydown", (event) => {
    const tabs = [...document.querySelectorAll(".tabs [role=tab]")].filter((x) => !x.hidden);
    const at = tabs.findIndex((x) => x.dataset.section === state.section);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) {
      event.preventDefault();
      select(tabs[(at + step + tabs.length) % tabs.length].dataset.section, true);
    }
  });
  document.addEventListener("keydown", (event) => {
    // Alt+1..8 jumps to a section from anywhere.
    if (event.altKey && /^[1-8]$/.test(event.key)) {
      const tab = document.querySelector(`.tabs [data-key="${event.key}"]`);
      if (tab && !tab.hidden && !$("#app").hidden) {
        event.preventDefault();
        select(tab.dataset.section, true);
      }
    }
  });
  const onSubmit = (selector, action) => $(selector).addEventListener("submit", (event) => {
    event.preventDefault();
    showError(null);
    action(event.target).catch(showError);
  });
  onSubmit("#product-search", loadProducts);
  onSubmit("#report-form", loadShifts);
  onSubmit("#journal-form", loadJournal);
  onSubmit("#hourly-form", loadHourly);
  onSubmit("#logs-form", loadLogs);
  onSubmit("#terminal-form", async (form) => {
    const body = Object.fromEntries(new FormData(form));
    if (!body.link_url) delete body.link_url;
    await api("POST", "/api/admin/terminals", body);
    form.reset();
    await loadFleet();
  });
  onSubmit("#user-form", async (form) => {
    await api("POST", "/api/admin/users", Object.fromEntries(new FormData(form)));
    form.reset();
    await loadUsers();
  });
  onSubmit("#reconcile-form", async (form) => {
    const lane = form.lane_id.value.trim();
    const data = new FormData();
    data.append("terminal", form.terminal.files[0]);
    data.append("acquirer", form.acquirer.files[0]);
    showReconciliation(await api("POST", `/api/admin/reconciliation${lane ? "?lane_id=" + encodeURIComponent(lane) : ""}`, data));
  });
  $("#x-report").addEventListener("click", () => showReport("x").catch(showError));
  $("#z-report").addEventListener("click", () => showReport("z").catch(showError));
  $("#pairing-close").addEventListener("click", () => closePairing().catch(showError));
  $("#pairing").addEventListener("cancel", (event) => { event.preventDefault(); closePairing().catch(showError); });

  boot();
})();
