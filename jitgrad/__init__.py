"""jitgrad: exact gradients of unmodified Python + NumPy functions, compiled to native kernels.

    @jitgrad.jit_grad
    def loss(params, data): ...
    g = loss(params, data)

The rest of the family (jitgrad/transforms.py): `jvp`, `vjp`, `jacobian` (`jacfwd`, `jacrev`), `hessian`,
`hvp`; custom derivatives `custom_vjp` and `custom_jvp`; `check_grads` for tests.  See README.md for the
tour.  `register` adds a rule for a C-level function (see 'Registering rules').  `wait_compiled()`
waits for the kernels compiling in the background (see 'Execution').
"""
from .backend import wait_compiled
from .api import GradFunction, JitgradWarning, jit_grad, value_and_grad
from .checking import check_grads
from .custom import custom_vjp
from .custom_jvp import custom_jvp
from .transforms import hessian, hvp, jacfwd, jacobian, jacrev, jvp, vjp
from .ir.errors import IRError, JitgradError, TraceError, UnsupportedError

__all__ = ["jit_grad", "value_and_grad", "GradFunction", "JitgradError", "UnsupportedError", "TraceError",
           "IRError", "JitgradWarning", "register", "jvp", "vjp", "jacobian", "jacfwd", "jacrev", "hessian", "hvp",
           "check_grads", "custom_vjp", "custom_jvp", "wait_compiled"]


def __getattr__(name):
    if name == "register":
        from .tracer import register
        return register
    raise AttributeError(name)
