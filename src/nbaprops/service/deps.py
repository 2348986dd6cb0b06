"""Dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from nbaprops.service.runtime import Runtime


def runtime(request: Request) -> Runtime:
    """The serving process's :class:`~nbaprops.service.runtime.Runtime`."""
    rt: Runtime = request.app.state.runtime
    return rt


__all__ = ["runtime"]
