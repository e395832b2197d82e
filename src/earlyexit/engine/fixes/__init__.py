"""The engine's behaviour fixes: each one behaviour of AWS Step Functions (or of the AWS services the patterns
call) that moto gets wrong, named after it; its docstring states the behaviour, links AWS's documentation and
names the test that proves it. Modules group them by concern; :data:`earlyexit.engine.FIXES` lists them."""
