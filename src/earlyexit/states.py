"""The state names of both state machines that code outside the ASL reads from histories.

Defined once here; ``tests/test_templates.py`` checks them against both ASL files.
"""

from __future__ import annotations

__all__ = [
    "APPROVAL_REQUEST_NOT_DELIVERED", "ASK_RESOURCE", "DEADLINE_PASSED", "DECIDED", "EITHER_OR", "QUORUM",
    "REJECT_INVALID_INPUT", "REMIND_ASK_END", "REMIND_RESOURCE", "VALIDATE_INPUT", "WAIT_FOR_THE_DEADLINE",
    "EitherOrStates", "QuorumStates",
]

# The resource of every task that asks an approver (TaskScheduled events carry it).
ASK_RESOURCE = "putEvents.waitForTaskToken"
# The resource of every task that sends reminders (no task token).
REMIND_RESOURCE = "putEvents"

# Shared by both patterns.
VALIDATE_INPUT = "Validate input"
REJECT_INVALID_INPUT = "Reject invalid input"
WAIT_FOR_THE_DEADLINE = "Wait for the deadline"
DEADLINE_PASSED = "Deadline passed"
REMIND_ASK_END = "Remind or end"  # the deadline flow's choice after each Wait: another reminder round, or the deadline
DECIDED = "Decided"
APPROVAL_REQUEST_NOT_DELIVERED = "Approval request not delivered"


class EitherOrStates:
    """either-or: one Parallel branch per approver (1 and 2) and the deadline flow."""

    PARALLEL = "Wait for the first decision"
    FLOWS = 2
    REMIND = "Remind the approvers"

    @staticmethod
    def ask(flow: int) -> str:
        return f"Ask approver {flow}"

    @staticmethod
    def decided(flow: int) -> str:
        """The Fail state that ends the Parallel with approver ``flow``'s decision."""
        return f"Approver {flow} decided"

    @staticmethod
    def not_delivered(flow: int) -> str:
        return f"Request {flow} not delivered"

    @classmethod
    def all(cls) -> set[str]:
        flows = range(1, cls.FLOWS + 1)
        return {VALIDATE_INPUT, REJECT_INVALID_INPUT, cls.PARALLEL, WAIT_FOR_THE_DEADLINE, REMIND_ASK_END, cls.REMIND,
                DEADLINE_PASSED, DECIDED, APPROVAL_REQUEST_NOT_DELIVERED, *map(cls.ask, flows),
                *map(cls.decided, flows), *map(cls.not_delivered, flows)}


class QuorumStates:
    """quorum: a Map over the approvers (one iteration per approver) beside the deadline flow."""

    PARALLEL = "Wait for the quorum"
    MAP = "Ask every approver"
    ASK = "Ask the approver"
    RECORD = "Record the decision"
    CHECK = "Check the quorum"
    MET = "Quorum met"
    UNREACHABLE = "Quorum unreachable"
    COUNTED = "Decision counted"
    NOT_DELIVERED = "Request not delivered"
    READ_TALLY = "Read the tally at the deadline"
    READ_ANSWERED = "Read who has answered"
    REMIND_BATCHES = "Remind in batches of ten"
    REMIND_BATCH = "Remind this batch"
    BATCH_SKIPPED = "Batch skipped"

    @classmethod
    def all(cls) -> set[str]:
        return {VALIDATE_INPUT, REJECT_INVALID_INPUT, cls.PARALLEL, cls.MAP, cls.ASK, cls.RECORD, cls.CHECK, cls.MET,
                cls.UNREACHABLE, cls.COUNTED, cls.NOT_DELIVERED, WAIT_FOR_THE_DEADLINE, REMIND_ASK_END,
                cls.READ_ANSWERED, cls.REMIND_BATCHES, cls.REMIND_BATCH, cls.BATCH_SKIPPED, cls.READ_TALLY,
                DEADLINE_PASSED, DECIDED, APPROVAL_REQUEST_NOT_DELIVERED}


EITHER_OR = EitherOrStates
QUORUM = QuorumStates
