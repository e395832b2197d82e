"""JSON responses written by a serializer compiled per operation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionContext, ActionResult

from earlyexit.engine.runtime.encoding import NotPlain, content_type, encoder, plain_json

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["responses_encoded_fast"]


def responses_encoded_fast(p: Patcher) -> None:
    """Every JSON response of the emulated services (Step Functions, DynamoDB, EventBridge ...) is written with
    a serializer compiled per operation from the service model: the same bytes as moto's generic one, which
    looked each member up through half a dozen alias rules and was most of the engine's CPU under polling.
    Results that hold objects rather than plain dicts still go through moto's. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    """
    original = p.original(ActionResult, "execute_result")

    def execute_result(self: ActionResult, context: ActionContext) -> Any:
        result = self.result
        if isinstance(result, Exception) or not plain_json(context):
            return original(self, context)
        try:
            body = encoder(context.service_model.service_name, context.operation_model.name)(result)
        except NotPlain:
            return original(self, context)
        return context.operation_model.http.get("responseCode", 200), {"Content-Type": content_type(context)}, body

    p.replace(ActionResult, "execute_result", execute_result)
