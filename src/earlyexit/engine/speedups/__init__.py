"""The engine's speed-ups: each performance (or memory) only, installed or not with
``earlyexit.engine.install(speedups=...)`` and proven equal to what it replaces by
``tests/test_engine_speedups.py``; :data:`earlyexit.engine.SPEEDUPS` lists them."""
