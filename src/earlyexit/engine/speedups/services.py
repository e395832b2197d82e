"""Service calls and requests: clients reused, EventBridge's input paths compiled once, handlers found once."""

from __future__ import annotations

import functools
import importlib
import threading
from typing import TYPE_CHECKING, Any

import jsonpath_ng.ext
from botocore.handlers import disable_signing
from moto.core import responses as moto_responses
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.utils import boto_client

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["event_paths_compiled_once", "requests_dispatched_fast", "reuse_service_clients"]


# Every interpreter module that builds service clients.
_CLIENT_MODULES = [f"moto.stepfunctions.parser.asl.component.state.{name}" for name in (
    "exec.state_task.service.state_task_service_dynamodb", "exec.state_task.service.state_task_service_events",
    "exec.state_task.service.state_task_service_sqs", "exec.state_task.service.state_task_service_sns",
    "exec.state_task.service.state_task_service_sfn", "exec.state_task.service.state_task_service_aws_sdk",
    "exec.state_task.service.state_task_service_batch", "exec.state_task.service.state_task_service_ecs",
    "exec.state_task.service.state_task_service_glue", "exec.state_task.service.state_task_service_unsupported",
    "exec.state_task.lambda_eval_utils", "exec.state_map.item_reader.eval.resource_eval_s3",
    "exec.state_map.result_writer.resource_eval.resource_eval_s3")]


# Services whose emulation reads the signature (an unsigned request is anonymous to moto's S3).
_SIGNED = frozenset({"s3"})


def reuse_service_clients(p: Patcher) -> None:
    """One client per service and region, reused by every task (boto3 clients are thread-safe); moto built a
    new client for every call, tens of milliseconds each. In-process, the clients do not sign their requests:
    moto signed them with fixed dummy keys that no emulated service checks, the region is in the request's
    URL, and signing was a quarter of each call (through a server the URL has no region, so they still sign).
    S3 clients still sign: moto's S3 takes an unsigned request for an anonymous one and refuses it (403) on
    a private bucket, as S3 does. Performance only: the calls are unchanged.

    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html
    """
    original = p.original(boto_client, "boto_client_for")
    cache_: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto signs every call with fixed dummy keys, whatever the state's credentials.
        key = (region, service, None if botocore_stubber.enabled else moto_server_port())
        with lock:
            if key not in cache_:
                client = original(region=region, service=service)
                if botocore_stubber.enabled and service not in _SIGNED:
                    client.meta.events.register_first("choose-signer", disable_signing)
                cache_[key] = client
            return cache_[key]

    for name in _CLIENT_MODULES:
        p.replace(importlib.import_module(name), "boto_client_for", boto_client_for)
    p.replace(boto_client, "boto_client_for", boto_client_for)


def event_paths_compiled_once(p: Patcher) -> None:
    """EventBridge delivers each event to its rules' targets, by default the event itself; moto compiled the
    eight JSONPath expressions of the default input template (a new parser each time, milliseconds each) for
    every event and target. Each expression is compiled once. Performance only: deliveries are unchanged.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    p.replace(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=4096)(p.original(jsonpath_ng.ext, "parse")))


def requests_dispatched_fast(p: Patcher) -> None:
    """Every request the emulated services receive (the clients' and the state machines' own calls) finds its
    handler without listing the handler class's methods again (moto called ``inspect.getmembers`` and
    re-derived the action's name on every request). Performance only: the handler is the same.

    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html
    """
    p.replace(moto_responses, "method_names_from_class",
              functools.cache(p.original(moto_responses, "method_names_from_class")))
    p.replace(moto_responses, "camelcase_to_underscores",
              functools.lru_cache(maxsize=4096)(p.original(moto_responses, "camelcase_to_underscores")))
