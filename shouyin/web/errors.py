"""One JSON error shape for the whole API, and the map from library errors to HTTP statuses.

Every error response is::

    {"error": "unknown_product", "message": "没有这个商品", "message_en": "No such product"}

``error`` is a stable code the pages switch on; ``message`` is Chinese (the default language),
``message_en`` English. Library errors (:mod:`shouyin.domain.errors`, :mod:`shouyin.payments`,
:mod:`shouyin.fleet`) are mapped to 4xx by their class, most specific first, in
:data:`ERROR_MAP`; the library's own text (English, and scrubbed of card data where it could
carry any) is kept as a detail, except for refused sign-ins and approvals (:data:`NO_DETAIL`),
whose answer must not reveal whether the user name exists. Input that fails validation is a
422 in the same shape. Nothing a user types may produce a 500: an unexpected exception is
logged with its traceback and answered with a generic 500 that reveals nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shouyin.domain import errors as domain
from shouyin.domain.carddata import scrub
from shouyin.fleet.registry import FleetError, InvalidTerminal, UnknownTerminal
from shouyin.lane.services import UnknownSale, UserExists
from shouyin.payments import errors as payments
from shouyin.web.runtime import NoTerminal

__all__ = ["ERROR_MAP", "NO_DETAIL", "ApiError", "install_error_handlers"]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API answers as it is (routes raise it for their own checks).

    Args:
        status: the HTTP status.
        code: the stable error code.
        zh: the Chinese message.
        en: the English message.
    """

    def __init__(self, status: int, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.status = status
        self.code = code
        self.zh = zh
        self.en = en


# (class, status, code, zh, en), most specific first: the first isinstance match wins.
ERROR_MAP: Final[Sequence[tuple[type[Exception], int, str, str, str]]] = (
    (UserExists, 409, "user_exists", "用户名已存在", "User name already taken"),
    (
        domain.InvalidCredentials,
        401,
        "invalid_credentials",
        "用户名或密码错误",
        "Wrong user name or password",
    ),
    (
        domain.AccountLocked,
        423,
        "account_locked",
        "账号已锁定，请稍后再试或找店长解锁",
        "Account locked; try later or ask a supervisor",
    ),
    (domain.PermissionDenied, 403, "forbidden", "没有权限", "Not allowed"),
    (domain.WeakPassword, 422, "weak_password", "密码太简单", "Password too weak"),
    (domain.AuthError, 403, "auth_error", "身份验证失败", "Authentication failed"),
    (domain.InvalidBarcode, 422, "invalid_barcode", "条码无效", "Invalid barcode"),
    (domain.UnknownProduct, 404, "unknown_product", "没有这个商品", "No such product"),
    (domain.InactiveProduct, 409, "inactive_product", "商品已停售", "Product is no longer sold"),
    (domain.UnknownLine, 404, "unknown_line", "没有这一行", "No such line"),
    (domain.EmptySale, 409, "empty_sale", "还没有商品", "The sale has no items"),
    (
        domain.TendersOutstanding,
        409,
        "tenders_outstanding",
        "还有未撤销的刷卡/扫码付款",
        "Card/QR payments are still on the sale",
    ),
    (
        domain.IllegalTransition,
        409,
        "sale_state",
        "当前状态下不能这样操作",
        "Not possible in the sale's current state",
    ),
    (
        domain.SaleStateError,
        409,
        "sale_state",
        "当前状态下不能这样操作",
        "Not possible in the sale's current state",
    ),
    (domain.TenderError, 422, "tender_error", "付款金额无效", "Invalid payment amount"),
    (domain.ReturnError, 422, "return_error", "退货数量或原单无效", "Invalid return"),
    (UnknownSale, 404, "unknown_sale", "没有这笔交易", "No such sale"),
    (domain.ReportError, 409, "report_error", "现在不能出报表", "The report cannot be made now"),
    (
        domain.ShiftError,
        409,
        "shift_error",
        "班次状态不允许",
        "Not possible with the current shift",
    ),
    (
        domain.CardDataError,
        422,
        "card_data",
        "输入中不能有银行卡号",
        "Card numbers are not accepted here",
    ),
    (domain.InvalidAmount, 422, "invalid_amount", "金额无效", "Invalid amount"),
    (domain.DiscountError, 422, "discount_error", "折扣无效", "Invalid discount"),
    (domain.DomainError, 422, "invalid", "输入无效", "Invalid input"),
    (
        payments.UnrecognisedPaymentCode,
        422,
        "unrecognised_code",
        "无法识别的付款码",
        "Unrecognised payment code",
    ),
    (
        payments.AmountRefused,
        422,
        "amount_refused",
        "金额超过应付金额",
        "Amount exceeds what is owed",
    ),
    (
        payments.SaleNotPayable,
        409,
        "sale_not_payable",
        "这笔交易现在不能付款",
        "The sale cannot be paid now",
    ),
    (
        payments.PaymentInProgress,
        409,
        "payment_in_progress",
        "这笔交易正在付款中",
        "A payment is already under way",
    ),
    (
        payments.RecoveryPending,
        503,
        "recovery_pending",
        "正在核对上次未完成的付款，请稍候",
        "Settling unfinished payments; please wait",
    ),
    (payments.UnknownIntent, 404, "unknown_payment", "没有这笔付款", "No such payment"),
    (
        payments.VoidRefused,
        409,
        "void_refused",
        "不能撤销这笔付款",
        "This payment cannot be voided",
    ),
    (payments.RefundRefused, 409, "refund_refused", "不能退款", "Refund refused"),
    (payments.PaymentError, 409, "payment_error", "付款失败", "Payment failed"),
    (
        NoTerminal,
        409,
        "no_terminal",
        "本收银台没有可用的POS机，请收现金",
        "No payment terminal on this lane; take cash",
    ),
    (UnknownTerminal, 404, "unknown_terminal", "没有这台终端", "No such terminal"),
    (InvalidTerminal, 422, "invalid_terminal", "终端信息无效", "Invalid terminal details"),
    (FleetError, 409, "fleet_error", "终端操作失败", "Terminal operation failed"),
)


NO_DETAIL: Final = (domain.InvalidCredentials, domain.AccountLocked)
"""Errors answered without the library's text: a refused sign-in or approval says the same
whether the user name exists or not (the text differed, and named the lock's end)."""


def _body(code: str, zh: str, en: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": zh, "message_en": en}
    if detail:
        body["detail"] = scrub(detail)[:300]
    return body


def error_response(
    status: int, code: str, zh: str, en: str, detail: str | None = None
) -> JSONResponse:
    """A response in the API's error shape."""
    return JSONResponse(_body(code, zh, en, detail), status_code=status)


def map_error(error: Exception) -> tuple[int, str, str, str] | None:
    """The (status, code, zh, en) of a library error, or ``None`` if it is not one."""
    if isinstance(error, ApiError):
        return error.status, error.code, error.zh, error.en
    for cls, status, code, zh, en in ERROR_MAP:
        if isinstance(error, cls):
            return status, code, zh, en
    return None


async def _library_error(_: Request, error: Exception) -> JSONResponse:
    mapped = map_error(error)
    if mapped is None:  # not one of ours after all
        return await _unexpected(_, error)
    status, code, zh, en = mapped
    detail = None if isinstance(error, (ApiError, *NO_DETAIL)) else str(error)
    return error_response(status, code, zh, en, detail)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    first = problems[0] if problems else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid')}"
    return error_response(422, "validation", "输入格式不正确", "Invalid input", detail)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {
        401: ("not_authenticated", "请先登录", "Please sign in"),
        403: ("forbidden", "没有权限", "Not allowed"),
        404: ("not_found", "找不到", "Not found"),
        405: ("method_not_allowed", "不支持这个操作", "Method not allowed"),
    }
    code, zh, en = codes.get(error.status_code, ("http_error", "请求无效", "Bad request"))
    response = error_response(error.status_code, code, zh, en)
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(
        500, "internal", "系统错误，请重试或联系管理员", "Internal error; retry or call the admin"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the API's shape."""
    app.add_exception_handler(ApiError, _library_error)
    for cls in {entry[0] for entry in ERROR_MAP}:
        app.add_exception_handler(cls, _library_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
