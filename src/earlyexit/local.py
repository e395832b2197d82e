"""The local API: deploy the stacks' SAM templates into the embedded engine or any AWS-compatible endpoint,
and drive them with boto3 clients.

``Cloud.deploy`` reads the same ``template.yaml`` that ``sam deploy`` uses, translates it with
aws-sam-translator, loads ``DefinitionUri`` and applies ``DefinitionSubstitutions``, then
provisions each resource through the service APIs. A resource type it cannot provision is
an error, never skipped. This module gathers the names (:mod:`earlyexit.cloud`,
:mod:`earlyexit.deploy`, :mod:`earlyexit.patterns` define them).
"""

from __future__ import annotations

from earlyexit.cloud import DEFAULT_MAX_FINISHED_EXECUTIONS, Cloud, EmbeddedCloud, embedded_cloud
from earlyexit.deploy import Stack
from earlyexit.errors import DeployError
from earlyexit.patterns import PATTERNS, STACKS

__all__ = ["DEFAULT_MAX_FINISHED_EXECUTIONS", "PATTERNS", "STACKS", "Cloud", "DeployError", "EmbeddedCloud", "Stack",
           "embedded_cloud"]
