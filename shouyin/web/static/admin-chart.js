// shouyin admin pages: the sales-by-hour bar chart, drawn as inline SVG (no chart library).
// Amounts arrive as integer fen and are only ever formatted with integer arithmetic.
"use strict";

window.AdminChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 960, H = 320, LEFT = 64, RIGHT = 12, TOP = 16, BOTTOM = 36;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Integer fen -> "1,234.56" (no floating point on money).
  function yuan(fen) {
    const sign = fen < 0 ? "-" : "";
    const abs = Math.abs(fen);
    const whole = Math.trunc(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${sign}${whole}.${String(abs % 100).padStart(2, "0")}`;
  }

  // A "nice" axis maximum (1, 2 or 5 times a power of ten, in fen) above the largest bar.
  function niceMax(fen) {
    if (fen <= 0) return 100;
    let step = 1;
    while (step * 10 <= fen) step *= 10;
    for (const m of [1, 2, 5, 10]) if (m * step >= fen) return m * step;
    return 10 * step;
  }

  /**
   * Draw the hours into `container`.
   * @param {HTMLElement} container
   * @param {{hour:number, sales_count:number, amount_fen:number}[]} hours
   * @param {(key:string)=>string} t translation
   */
  function draw(container, hours, t) {
    container.textContent = "";
    const max = niceMax(Math.max(0, ...hours.map((h) => h.amount_fen)));
    const svg = el("svg", {
      viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("s_hourly"),
      "data-testid": "hourly-svg",
    });
    const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    for (let i = 0; i <= 4; i++) {
      const y = TOP + plotH - (plotH * i) / 4;
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, stroke: "#e3e7ee" }));
      svg.appendChild(el("text", { x: LEFT - 6, y: y + 4, "text-anchor": "end" },
        yuan(Math.trunc((max * i) / 4))));
    }
    const slot = plotW / Math.max(1, hours.length);
    hours.forEach((h, index) => {
      const height = max ? (plotH * h.amount_fen) / max : 0;
      const x = LEFT + index * slot + slot * 0.15;
      const bar = el("rect", {
        class: "bar", x, y: TOP + plotH - height, width: slot * 0.7, height: Math.max(0, height),
        tabindex: h.sales_count ? 0 : -1, "data-hour": h.hour, "data-fen": h.amount_fen,
      });
      bar.appendChild(el("title", {},
        `${String(h.hour).padStart(2, "0")}:00  ￥${yuan(h.amount_fen)}  ${h.sales_count} ${t("sales")}`));
      svg.appendChild(bar);
      svg.appendChild(el("text", { x: x + slot * 0.35, y: H - BOTTOM + 16, "text-anchor": "middle" },
        String(h.hour)));
    });
    svg.appendChild(el("line", {
      x1: LEFT, x2: W - RIGHT, y1: TOP + plotH, y2: TOP + plotH, stroke: "#8a93a3",
    }));
    container.appendChild(svg);
  }

  return { draw, yuan, niceMax };
})();
