"""Powertools' Tracer, without the X-Ray SDK when detailed tracing is off.

`Tracer()` imports the X-Ray SDK as it is made, even disabled: about a quarter of a handler's
cold start. Lambda's own tracing (the template's `Tracing: Active`) needs no SDK; the SDK's
subsegments of every AWS and API call are opt-in (the `DetailedTracing` parameter), and without
them the Tracer gets this no-op provider, so the SDK is never imported.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from wanedit.settings import TracingSettings


class _Quiet(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...

    def add_subsegment(self, subsegment: Any) -> None: ...

    def remove_subsegment(self, subsegment: Any) -> None: ...

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class _NoTracing(BaseProvider):
    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _Quiet()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _Quiet()

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def patch(self, modules: Sequence[str]) -> None: ...

    def patch_all(self) -> None: ...


def tracer() -> Tracer:
    """The handler's Tracer: the X-Ray SDK's when detailed tracing is on, else one that does nothing."""
    if TracingSettings().detailed:
        return Tracer()
    return Tracer(disabled=True, provider=_NoTracing())
