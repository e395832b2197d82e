"""The engine's evaluation environment: moto's, with the task tokens each flow waits on and its Map item."""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext

__all__ = ["EngineEnvironment"]


class EngineEnvironment(Environment):
    """moto's evaluation environment for the engine's executions; its frames are EngineEnvironments too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owned_endpoints: set[CallbackEndpoint] = set()  # callback endpoints this flow waits on
        self._inherited_item_index: int | None = None

    @classmethod
    def as_frame_of(cls, env: Environment, event_history_frame_cache: EventHistoryContext | None = None
                    ) -> EngineEnvironment:
        # moto's as_frame_of builds a plain Environment; build this class's frame instead.
        return cls.as_inner_frame_of(env=env, variable_store=env.variable_store,
                                     event_history_frame_cache=event_history_frame_cache)

    @classmethod
    def as_inner_frame_of(cls, env: Environment, variable_store: Any,
                          event_history_frame_cache: EventHistoryContext | None = None) -> EngineEnvironment:
        frame = super().as_inner_frame_of(env=env, variable_store=variable_store,
                                          event_history_frame_cache=event_history_frame_cache)
        if isinstance(env, EngineEnvironment):
            frame._inherited_item_index = env.item_index
        return frame

    @property
    def item_index(self) -> int | None:
        """The index of the Map item this flow processes (the innermost Map), None outside a Map."""
        map_data = self.states.context_object.context_object_data.get("Map")
        return map_data["Item"]["Index"] if map_data else self._inherited_item_index
