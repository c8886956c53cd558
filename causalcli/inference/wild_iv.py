"""Wild restricted efficient (WRE) cluster bootstrap for 2SLS and LIML with one endogenous regressor.

Davidson and MacKinnon (2010, "Wild bootstrap tests for IV regression", JBES 28(1)); the clustered
version as in Roodman, MacKinnon, Nielsen and Webb (2019, "Fast and wild", Stata Journal 19(1), sec. 3.3).
For a null beta = b0 of the coefficient of ``x`` in ``y = beta x + W gamma + u`` with instruments
``Z = [W, excluded]``:

* restricted structural fit: ``gamma~`` from OLS of ``y - b0 x`` on ``W``, residuals ``u~``;
* efficient first stage: OLS of ``x`` on ``Z`` and ``u~``, ``pi~`` its ``Z`` part, ``v~ = x - Z pi~``;
* a draw multiplies both residuals by the same weight per cluster: ``x* = Z pi~ + v~ w_g``,
  ``y* = b0 x* + W gamma~ + u~ w_g``; 2SLS (or LIML, its k recomputed from the draw) on (y*, x*) with the
  CRV1 covariance gives ``t*``;
* p(b0) = share of draws with ``|t*| >= |t(b0)|``, t(b0) the actual data's (the draw of all ones).

Every quantity of a draw is a sum over clusters of per-cluster cross-products, and so is every null's
restricted fit: ``u~`` and ``v~`` are combinations of the same columns ``R = [Z, x, y net of W, x net of W]``,
so each cluster's ``R_g'R_g`` is formed once, in one pass over the rows, and a null b0 costs O(G m^2) and a
draw O(G l k), never O(n) (for LIML the sums of products that give ``[y*, x*]'[y*, x*]`` are bilinear forms
in the same matrices). The interval inverts the test over b0 (the same draws for every b0), as boottest
does; it can be unbounded when the instruments are weak.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causalcli.inference.inversion import invert_test, symmetric_p


class WreBootstrap:
    """The WRE test of b0 for the coefficient of ``x`` (the last regressor), clustered on ``codes``."""

    def __init__(self, y: np.ndarray, x: np.ndarray, W: np.ndarray, excluded: np.ndarray, codes: np.ndarray,
                 G: int, V: np.ndarray, scale: float = 1.0, liml: bool = False):
        self.liml = liml
        Z = np.column_stack([W, excluded])
        self.l, self.kw = Z.shape[1], W.shape[1]
        self.G, self.V, self.scale = G, V, scale
        self.Q = np.linalg.inv(Z.T @ Z)
        self.WWinv = WWinv = np.linalg.inv(W.T @ W)
        # every null's residuals are combinations of the same columns: u(b0) = uy - b0 ux, with uy, ux the outcome
        # and the treatment net of W; so one pass over the rows forms each cluster's cross-products of
        # R = [Z, x, uy, ux], and a null costs O(G) from then on (an interval inverts the test 60-80 times)
        self.gamma_y, self.gamma_x = WWinv @ (W.T @ y), WWinv @ (W.T @ x)
        R = np.column_stack([Z, x, y - W @ self.gamma_y, x - W @ self.gamma_x])
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(G))
        self.Cg = np.stack([R[b].T @ R[b] for b in np.split(order, starts[1:])])  # G x m x m
        self.C = self.Cg.sum(axis=0)
        self.ZWg = self.Cg[:, :self.l, :self.kw]                                   # G x l x kw
        self.ZW = self.ZWg.sum(axis=0)

    def _column(self, z: np.ndarray | None = None, x: float = 0.0, uy: float = 0.0, ux: float = 0.0) -> np.ndarray:
        """The coefficients of a per-row vector in R = [Z, x, uy, ux]."""
        out = np.zeros(self.l + 3)
        if z is not None:
            out[:z.size] = z
        out[self.l:] = (x, uy, ux)
        return out

    def t_stats(self, b0: float, V: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """(t of the data, t* of each draw) for the null b0."""
        V = self.V if V is None else V
        l, C = self.l, self.C
        gamma = self.gamma_y - b0 * self.gamma_x
        u = self._column(uy=1.0, ux=-b0)  # the restricted residuals y - b0 x - W gamma
        ex = self._column(x=1.0)
        # the efficient first stage: x on [Z, u], from the cross-products
        F = np.zeros((l + 1, l + 1))
        F[:l, :l] = C[:l, :l]
        F[:l, l] = F[l, :l] = C[:l] @ u
        F[l, l] = u @ C @ u
        pi = np.linalg.lstsq(F, np.append(C[:l] @ ex, u @ C @ ex), rcond=None)[0][:-1]
        v = ex - self._column(pi)  # x - Z pi
        Zu, Zv = self.Cg[:, :l] @ u, self.Cg[:, :l] @ v      # G x l: Z_g' u_g, Z_g' v_g
        Zx0 = self.Cg[:, :l, :l] @ pi                        # G x l: Z_g' Z_g pi
        Zy0 = b0 * Zx0 + self.ZWg @ gamma                     # G x l
        quad = self._quadratic(b0, pi, gamma, u, v) if self.liml else None
        ones = np.ones((1, self.G))
        t_obs = self._t(b0, ones, Zx0, Zy0, Zu, Zv, quad)[0]
        return float(t_obs), self._t(b0, V, Zx0, Zy0, Zu, Zv, quad)

    def _quadratic(self, b0: float, pi: np.ndarray, gamma: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict:
        """LIML's k needs [y*, x*]'[y*, x*]: with y* = ay + uy w, x* = ax + ux w (w the row's cluster weight),
        each product is a fixed sum, plus a sum over clusters times w_g, plus one times w_g^2; every one a
        bilinear form in the clusters' cross-products."""
        ax = self._column(pi)
        ay = self._column(b0 * pi + np.append(gamma, np.zeros(self.l - self.kw)))
        ux, uy = v, b0 * v + u

        def per(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.einsum("i,gij,j->g", a, self.Cg, b)

        return {"yy": (float(ay @ self.C @ ay), 2 * per(ay, uy), per(uy, uy)),
                "xx": (float(ax @ self.C @ ax), 2 * per(ax, ux), per(ux, ux)),
                "xy": (float(ax @ self.C @ ay), per(ax, uy) + per(ay, ux), per(ux, uy))}

    def _t(self, b0: float, V: np.ndarray, Zx0, Zy0, Zu, Zv, quad: dict | None = None) -> np.ndarray:
        out = np.empty(V.shape[0])
        kw = self.kw
        k = kw + 1
        for lo in range(0, V.shape[0], 256):
            w = V[lo:lo + 256]                                           # B x G
            Zxg = Zx0[None] + w[:, :, None] * Zv[None]                   # B x G x l
            Zyg = Zy0[None] + w[:, :, None] * (b0 * Zv + Zu)[None]       # B x G x l
            Zx, Zy = Zxg.sum(axis=1), Zyg.sum(axis=1)                    # B x l
            ZX = np.concatenate([np.broadcast_to(self.ZW, (w.shape[0],) + self.ZW.shape), Zx[:, :, None]], axis=2)
            QZX = self.Q @ ZX                                            # B x l x k
            A = np.transpose(ZX, (0, 2, 1)) @ QZX                        # B x k x k: X*'P X*
            rhs = np.einsum("blk,bl->bk", QZX, Zy)                       # X*'P y*
            if quad is not None:  # LIML: the k-class mix (1 - k) X*'X* + k X*'P X*, k from the draw
                A, rhs = self._kclass(w, Zx, Zy, A, rhs, quad, kw)
            b = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]             # B x k
            ek = np.zeros(k)
            ek[-1] = 1.0
            c = np.linalg.solve(A, np.broadcast_to(ek, (w.shape[0], k))[:, :, None])[:, :, 0]
            r = np.einsum("blk,bk->bl", QZX, c)                          # B x l
            # Z_g' e_g = Z_g'y*_g - Z_g'W_g b_W - Z_g'x*_g b_x
            Ze = Zyg - np.einsum("glw,bw->bgl", self.ZWg, b[:, :kw]) - Zxg * b[:, None, kw:k]
            se = np.sqrt(self.scale * np.sum(np.einsum("bl,bgl->bg", r, Ze) ** 2, axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo:lo + w.shape[0]] = (b[:, -1] - b0) / se
        return out

    def _kclass(self, w: np.ndarray, Zx: np.ndarray, Zy: np.ndarray, A: np.ndarray, rhs: np.ndarray, quad: dict,
                kw: int) -> tuple[np.ndarray, np.ndarray]:
        def total(key: str) -> np.ndarray:
            fixed, linear, square = quad[key]
            return fixed + w @ linear + (w * w) @ square                 # B

        yy, xx, xy = total("yy"), total("xx"), total("xy")
        # [y*, x*]' M [y*, x*] for M the annihilator of W (exogenous) and of Z (all instruments)
        Wy, Wx = Zy[:, :kw], Zx[:, :kw]

        def annihilated(py: np.ndarray, px: np.ndarray, inv: np.ndarray) -> tuple:
            iy, ix = py @ inv, px @ inv
            return (yy - np.sum(iy * py, axis=1), xy - np.sum(iy * px, axis=1), xx - np.sum(ix * px, axis=1))

        a11, a12, a22 = annihilated(Wy, Wx, self.WWinv)
        b11, b12, b22 = annihilated(Zy, Zx, self.Q)
        # the smallest root of det(A1 - k A2) = 0 for these 2 x 2 matrices
        qa = b11 * b22 - b12 * b12
        qb = -(a11 * b22 + a22 * b11 - 2 * a12 * b12)
        qc = a11 * a22 - a12 * a12
        kappa = (-qb - np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa)
        # X*'X* and X*'y* with X* = [W, x*]
        WW = self.C[:kw, :kw]
        B = w.shape[0]
        XX = np.empty_like(A)
        XX[:, :kw, :kw] = WW
        XX[:, :kw, kw] = Wx
        XX[:, kw, :kw] = Wx
        XX[:, kw, kw] = xx
        Xy = np.concatenate([Wy, xy[:, None]], axis=1)
        mix = kappa.reshape(B, 1, 1)
        return (1 - mix) * XX + mix * A, (1 - kappa)[:, None] * Xy + kappa[:, None] * rhs

    def p_value(self, b0: float) -> float | None:
        return symmetric_p(*self.t_stats(b0))

    def interval(self, estimate: float, se: float, conf_level: float) -> dict[str, Any]:
        """The set {b0 : p(b0) > 1 - conf_level} (its hull; ``inference.inversion``)."""
        return invert_test(self.p_value, estimate, se, conf_level,
                           "unbounded: the bootstrap test accepts effects arbitrarily far from the estimate "
                           "(weak instruments with few clusters); read diagnostics.anderson_rubin")
