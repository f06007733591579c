"""`Strategy`, the class a strategy's `WitWorld` subclasses: the contract's world with `deploy` guarded.

componentize-py calls `WitWorld().deploy(plan)`. Whatever escapes it must be the contract's error: an
escaped batch failure (`Err` of a list of `MachineError`) or a plain exception otherwise crashes inside
the bindings' runtime with `KeyError(<class 'list'>)` and a wasm backtrace, which tells a strategy's
author nothing. Subclassing `Strategy` wraps every `deploy` a subclass defines in `guard_deploy`, so the
deploy fails with an error naming the failed machines (or the exception and where it was raised).
"""

from typing import Any

from wit_world import WitWorld as _WitWorld

from .errors import guard_deploy


class Strategy(_WitWorld):
    """Base class of a strategy (`class WitWorld(Strategy)`): `deploy` is guarded (see `guard_deploy`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        deploy = cls.__dict__.get("deploy")
        if deploy is not None:
            cls.deploy = guard_deploy(deploy)  # type: ignore[method-assign]
