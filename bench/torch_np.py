"""A thin NumPy-named namespace over torch, used only where binding `np` to torch itself fails.

torch differs from NumPy where a workload needs: reductions with `axis` return (values, indices) for
max, `keepdims` is `keepdim`, and logaddexp/maximum take no Python scalars. Everything else forwards to
torch unchanged.
"""
import torch


def max(a, axis=None, keepdims=False):  # noqa: A001  (NumPy's name)
    """np.max: the values only."""
    return torch.amax(a, dim=() if axis is None else axis, keepdim=keepdims)


def sum(a, axis=None, keepdims=False):  # noqa: A001
    """np.sum with NumPy's keyword names."""
    return torch.sum(a) if axis is None else torch.sum(a, dim=axis, keepdim=keepdims)


def logaddexp(a, b):
    """np.logaddexp accepting Python scalars."""
    return torch.logaddexp(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))


def __getattr__(name):
    return getattr(torch, name)
