"""X/Z report layout for the receipt printer and the terminal: pure text, in Chinese."""

from __future__ import annotations

from shouyin.devices.escpos_model import PrinterEncoding
from shouyin.devices.receipt import PAPER_58MM, TENDER_NAMES, money, pad_center, two_columns
from shouyin.domain.reports import Report, ReportKind


def render_report(
    report: Report,
    store_name: str,
    *,
    width: int = PAPER_58MM,
    cashier_names: dict[str, str],
    encoding: PrinterEncoding = PrinterEncoding.GB18030,
) -> list[str]:
    """Lay out an X (中间报表) or Z (日结报表) report as printable lines.

    Args:
        report: the report.
        store_name: printed at the top.
        width: paper width in columns.
        cashier_names: display names by user id (unknown ids are printed as they are).
        encoding: the printer's encoding, which decides how many columns a character takes.

    Returns:
        One string per printed line.
    """
    rule = "-" * width
    title = "日结报表 Z" if report.kind is ReportKind.Z else "中间报表 X"
    out = [pad_center(store_name, width, encoding), pad_center(title, width, encoding), rule]
    if report.number is not None:
        out.append(f"Z 序号：{report.number:04d}")
    if report.business_day is not None:
        out.append(f"营业日：{report.business_day:%Y-%m-%d}")
    out.append(f"打印时间：{report.generated_at:%Y-%m-%d %H:%M:%S}")
    out.append(rule)

    def row(label: str, value: str) -> None:
        out.extend(two_columns(label, value, width, encoding))

    row("销售笔数", str(report.sales_count))
    row("退货笔数", str(report.returns_count))
    row("作废笔数", str(report.voids_count))
    row("删行次数", str(report.line_voids_count))
    row("开钱箱(无销售)", str(report.no_sales_count))
    if report.suspended_count:
        row("未完成交易", str(report.suspended_count))
    out.append(rule)
    row("商品原价合计", money(report.gross))
    row("优惠合计", money(-report.discounts))
    row("销售净额", money(report.net_sales))
    row("退货金额", money(-report.refunds))
    row("营业净额", money(report.net))
    out.append(rule)
    out.append("按支付方式：")
    for kind, tender in report.by_tender.items():
        row(f"  {TENDER_NAMES[kind]}", money(tender.net))
    out.append("按品类：")
    for category, amount in report.by_category.items():
        row(f"  {category}", money(amount))
    out.append("按收银员：")
    for cashier_id, cashier in report.by_cashier.items():
        name = cashier_names.get(cashier_id, cashier_id)
        row(f"  {name} ({cashier.sales_count}笔)", money(cashier.net))
    out.append("税额（含税价内）：")
    for rate_bp, tax in report.tax_by_rate.items():
        whole, frac = divmod(rate_bp, 100)
        row(f"  {whole}%" if not frac else f"  {whole}.{frac:02d}%", money(tax))
    out.append(rule)
    row("备用金+现金收支", money(report.cash_expected))
    if report.cash_counted is not None:
        row("实点现金", money(report.cash_counted))
        variance = report.cash_variance
        if variance is not None:
            row("长短款", money(variance))
    return out
