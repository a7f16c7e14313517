"""Mamba's selective scan on CPU as a fused numba kernel (optional: used when `numba` is importable).

The kernel runs the recurrence `h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`, `y_t = C_t h_t + D u_t` one sequence
at a time with the (state, inner) state in cache and the inner loop over the `inner` channels vectorised (AVX / NEON
through LLVM), `exp` included: `exp2` is computed inline (Cephes' `exp2f` polynomial, relative error under 1e-7)
instead of calling the C library once per element. Like `ChunkedSelectiveScan` (the pure-PyTorch path, which stays the
reference and the path for GPUs without `mamba_ssm`, float64 and machines without numba) it never builds the
(batch, length, inner, state) tensor: forward keeps the state at every `KERNEL_CHUNK_SIZE`-th step, backward recomputes
a chunk of states from there and runs the adjoint recurrence through it, fused with every gradient. Sequences are split
over `torch.get_num_threads()` threads (the kernels release the GIL).

Cost against the pure-PyTorch path and a sequential loop: `benchmarks/bench_scan.py`. The kernels compile on first use
(about 10-20 s) and numba caches them on disk.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

try:  # optional dependency (`pip install hsanet-sweet[cpu-kernels]`, also in the test and demo extras)
    import numba
    from llvmlite import ir as llvm_ir
    from numba.extending import intrinsic
except Exception:  # noqa: BLE001 - any failure (missing package, unsupported platform) means "no kernel"
    numba = None

KERNEL_CHUNK_SIZE = 8  # steps per chunk: two (chunk, state, inner) float32 buffers stay in a core's L2 cache

if numba is not None:

    @intrinsic
    def _float32_from_bits(typingctx, bits):
        """The float32 whose bit pattern is the int32 `bits` (LLVM bitcast; vectorises)."""

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_ir.FloatType())

        return numba.types.float32(numba.types.int32), codegen

    # fast-math without "nnan"/"ninf": reductions may be reordered (so they vectorise), NaN and inf still propagate
    _FASTMATH = {"contract", "reassoc", "arcp", "afn", "nsz"}

    @numba.njit(inline="always", fastmath=_FASTMATH)
    def _exp2(x):
        """2**x for float32 `x` (Cephes `exp2f`: x = k + f, |f| <= 1/2, 2**f by a degree-7 polynomial, 2**k from the
        exponent bits). Inputs below -126 give 2**-126 (~1e-38) instead of a subnormal or 0; NaN stays NaN."""
        clamped = min(max(x, np.float32(-126.0)), np.float32(126.0))
        whole = np.floor(clamped + np.float32(0.5))
        f = clamped - whole
        p = np.float32(1.535336188319500e-4)
        p = p * f + np.float32(1.339887440266574e-3)
        p = p * f + np.float32(9.618437357674640e-3)
        p = p * f + np.float32(5.550332471162809e-2)
        p = p * f + np.float32(2.402264791363012e-1)
        p = p * f + np.float32(6.931472028550421e-1)
        p = p * f + np.float32(1.0)
        result = p * _float32_from_bits((np.int32(whole) + np.int32(127)) << np.int32(23))
        return result if x == x else x

    @numba.njit(fastmath=_FASTMATH, nogil=True, cache=True)
    def _scan_forward_kernel(u, delta, A_log2, B, C, D, y, boundaries, chunk_size):
        """y (batch, length, inner) and the state before every chunk, boundaries (batch, chunks, state, inner).
        `A_log2` is A * log2(e), transposed to (state, inner)."""
        batch, length, inner = u.shape
        state_size = A_log2.shape[0]
        state = np.empty((state_size, inner), dtype=np.float32)
        drive = np.empty(inner, dtype=np.float32)
        for b in range(batch):
            state[:] = 0
            for t in range(length):
                if t % chunk_size == 0:
                    boundaries[b, t // chunk_size] = state
                delta_t, u_t, y_t = delta[b, t], u[b, t], y[b, t]
                for d in range(inner):
                    drive[d] = delta_t[d] * u_t[d]
                    y_t[d] = D[d] * u_t[d]
                for n in range(state_size):
                    b_n, c_n = B[b, t, n], C[b, t, n]
                    state_n, a_n = state[n], A_log2[n]
                    for d in range(inner):
                        h = _exp2(delta_t[d] * a_n[d]) * state_n[d] + drive[d] * b_n
                        state_n[d] = h
                        y_t[d] += c_n * h

    @numba.njit(fastmath=_FASTMATH, nogil=True, cache=True)
    def _scan_backward_kernel(u, delta, A_log2, A, B, C, D, grad_y, boundaries, chunk_size,
                              grad_u, grad_delta, grad_B, grad_C, grad_A, grad_D):
        """Gradients of the forward kernel. `A` is (state, inner); `grad_A` (state, inner) and `grad_D` (inner,) are
        accumulated into (zero them first)."""
        batch, length, inner = u.shape
        state_size = A_log2.shape[0]
        states = np.empty((chunk_size, state_size, inner), dtype=np.float32)
        decays = np.empty((chunk_size, state_size, inner), dtype=np.float32)
        drive = np.empty((chunk_size, inner), dtype=np.float32)
        carry = np.empty((state_size, inner), dtype=np.float32)  # exp(delta_{t+1} A) g_{t+1}
        grad_drive = np.empty(inner, dtype=np.float32)
        grad_delta_a = np.empty(inner, dtype=np.float32)  # d/d delta through exp(delta A)
        num_chunks = (length + chunk_size - 1) // chunk_size
        for b in range(batch):
            carry[:] = 0
            for chunk in range(num_chunks - 1, -1, -1):
                start = chunk * chunk_size
                steps = min(chunk_size, length - start)
                for s in range(steps):  # recompute the chunk's decays and states from its boundary
                    t = start + s
                    delta_t, u_t, drive_s = delta[b, t], u[b, t], drive[s]
                    for d in range(inner):
                        drive_s[d] = delta_t[d] * u_t[d]
                    previous = boundaries[b, chunk] if s == 0 else states[s - 1]
                    for n in range(state_size):
                        b_n = B[b, t, n]
                        a_n, previous_n, state_n, decay_n = A_log2[n], previous[n], states[s, n], decays[s, n]
                        for d in range(inner):
                            a = _exp2(delta_t[d] * a_n[d])
                            decay_n[d] = a
                            state_n[d] = a * previous_n[d] + drive_s[d] * b_n
                for s in range(steps - 1, -1, -1):  # adjoint g_t = C_t dy_t + exp(delta_{t+1} A) g_{t+1}
                    t = start + s
                    grad_y_t, delta_t, u_t, drive_s = grad_y[b, t], delta[b, t], u[b, t], drive[s]
                    previous = boundaries[b, chunk] if s == 0 else states[s - 1]
                    grad_drive[:] = 0
                    grad_delta_a[:] = 0
                    for n in range(state_size):
                        b_n, c_n = B[b, t, n], C[b, t, n]
                        state_n, previous_n, decay_n = states[s, n], previous[n], decays[s, n]
                        carry_n, a_n, grad_a_n = carry[n], A[n], grad_A[n]
                        grad_c = np.float32(0.0)
                        grad_b = np.float32(0.0)
                        for d in range(inner):
                            g = c_n * grad_y_t[d] + carry_n[d]
                            grad_c += state_n[d] * grad_y_t[d]
                            grad_b += g * drive_s[d]
                            grad_drive[d] += b_n * g
                            grad_log_decay = g * previous_n[d] * decay_n[d]  # d/d(delta_t A) of exp(delta_t A) h_{t-1}
                            grad_delta_a[d] += grad_log_decay * a_n[d]
                            grad_a_n[d] += grad_log_decay * delta_t[d]
                            carry_n[d] = decay_n[d] * g
                        grad_C[b, t, n] = grad_c
                        grad_B[b, t, n] = grad_b
                    grad_u_t, grad_delta_t = grad_u[b, t], grad_delta[b, t]
                    for d in range(inner):
                        grad_delta_t[d] = grad_delta_a[d] + grad_drive[d] * u_t[d]
                        grad_u_t[d] = grad_drive[d] * delta_t[d] + grad_y_t[d] * D[d]
                        grad_D[d] += grad_y_t[d] * u_t[d]


def numba_scan_available() -> bool:
    """Whether the numba kernels can be used (numba importable)."""
    return numba is not None


def _batch_slices(batch: int) -> list[slice]:
    """Contiguous slices of the batch, one per thread (`torch.get_num_threads()`, at most one per sequence)."""
    parts = max(1, min(batch, torch.get_num_threads()))
    bounds = [round(batch * i / parts) for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def _run_sliced(kernel, slices: list[slice], arguments) -> None:
    """`kernel(*arguments(part))` for every batch slice, in threads when there are several. A pool per call: a pool
    kept across calls would hang in a forked child (DataLoader workers) whose threads are gone."""
    if len(slices) == 1:
        kernel(*arguments(slices[0]))
        return
    with ThreadPoolExecutor(max_workers=len(slices)) as pool:
        for future in [pool.submit(kernel, *arguments(part)) for part in slices]:
            future.result()


class NumbaSelectiveScan(torch.autograd.Function):
    """`ChunkedSelectiveScan`'s contract (same layout, float32 CPU tensors, contiguous) through the numba kernels."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D):
        batch, length, inner = u.shape
        chunk_size = KERNEL_CHUNK_SIZE
        A_log2 = (A.t() * math.log2(math.e)).contiguous()
        y = torch.empty_like(u)
        boundaries = u.new_empty(batch, -(-length // chunk_size), A.shape[1], inner)
        arrays = [x.detach().numpy() for x in (u, delta, A_log2, B, C, D, y, boundaries)]
        u_, delta_, A_log2_, B_, C_, D_, y_, boundaries_ = arrays
        _run_sliced(_scan_forward_kernel, _batch_slices(batch), lambda part: (
            u_[part], delta_[part], A_log2_, B_[part], C_[part], D_, y_[part], boundaries_[part], chunk_size))
        ctx.save_for_backward(u, delta, A, B, C, D, boundaries)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        u, delta, A, B, C, D, boundaries = ctx.saved_tensors
        chunk_size = KERNEL_CHUNK_SIZE
        A_t = A.t().contiguous()
        A_log2 = A_t * math.log2(math.e)
        grad_y = grad_y.to(torch.float32).contiguous()
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(u)
        grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
        slices = _batch_slices(u.shape[0])
        grad_A_parts = u.new_zeros(len(slices), *A_t.shape)  # one accumulator per thread, summed below
        grad_D_parts = u.new_zeros(len(slices), D.shape[0])
        inputs = [x.detach().numpy() for x in (u, delta, A_log2, A_t, B, C, D, grad_y, boundaries)]
        outputs = [x.numpy() for x in (grad_u, grad_delta, grad_B, grad_C, grad_A_parts, grad_D_parts)]
        index = {part.start: i for i, part in enumerate(slices)}

        def arguments(part):
            u_, delta_, A_log2_, A_t_, B_, C_, D_, grad_y_, boundaries_ = inputs
            grad_u_, grad_delta_, grad_B_, grad_C_, grad_A_, grad_D_ = outputs
            return (u_[part], delta_[part], A_log2_, A_t_, B_[part], C_[part], D_, grad_y_[part], boundaries_[part],
                    chunk_size, grad_u_[part], grad_delta_[part], grad_B_[part], grad_C_[part],
                    grad_A_[index[part.start]], grad_D_[index[part.start]])

        _run_sliced(_scan_backward_kernel, slices, arguments)
        return grad_u, grad_delta, grad_A_parts.sum(0).t(), grad_B, grad_C, grad_D_parts.sum(0)


def selective_scan_numba(u, delta, A, B, C, D):
    """The selective scan through the numba kernels (float32 CPU tensors, model layout: `u`, `delta` (batch, length,
    inner); `A` (inner, state); `B`, `C` (batch, length, state); `D` (inner,)). Returns `y` (batch, length, inner)."""
    if numba is None:
        raise ImportError("selective_scan_numba needs numba: `pip install numba`.")
    # the kernels do not check bounds: shapes are checked here, so a mismatch is an error and never a stray read
    batch, length, inner = u.shape if u.dim() == 3 else (None, None, None)
    state_size = A.shape[1] if A.dim() == 2 else None
    expected = {"u": (batch, length, inner), "delta": (batch, length, inner), "A": (inner, state_size),
                "B": (batch, length, state_size), "C": (batch, length, state_size), "D": (inner,)}
    for name, tensor in zip(expected, (u, delta, A, B, C, D)):
        if tuple(tensor.shape) != expected[name] or None in expected[name] or tensor.device.type != "cpu":
            raise ValueError(f"selective_scan_numba: `{name}` must be a CPU tensor of shape {expected[name]} "
                             f"(batch, length, inner, state from `u` and `A`), got {tuple(tensor.shape)} on "
                             f"{tensor.device}")
    u, delta, A, B, C, D = (x.to(torch.float32).contiguous() for x in (u, delta, A, B, C, D))
    return NumbaSelectiveScan.apply(u, delta, A, B, C, D)
