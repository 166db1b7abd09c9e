"""The admin pages' address: ``/admin`` opens the admin page (static HTML; it signs in through
the API, so the page itself holds no data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

__all__ = ["router"]

router = APIRouter()


@router.get("/admin", include_in_schema=False)
async def admin_page() -> RedirectResponse:
    """Redirect to the admin page."""
    return RedirectResponse("/static/admin.html")
