#!/usr/bin/env python3
"""Prints the Winograd minimal-filtering matrices F(m, r) that kernels/winograd.cl uses, and
checks them exactly: y = A^T [(G g) * (B^T d)] must equal the correlation y_i = sum_k d_(i+k) g_k.

Toom-Cook with the points 0, 1, -1, 2, -2, ... and infinity (alpha = m + r - 1 points):
A^T[i][j] = p_j^i (the infinity column is 1 in the last row only), G[j][k] = p_j^k / f_j with
f_j = prod_(l != j) (p_j - p_l) (the infinity row picks g_(r-1)); B^T then follows from the
identity above, solved exactly with sympy.

    /usr/bin/python3 scripts/winograd-matrices.py 2 5     # F(2x2, 5x5)
"""
import sys
import sympy as sp


def matrices(m, r):
    alpha = m + r - 1
    pts = [sp.Integer(0)]
    k = 1
    while len(pts) < alpha - 1:
        pts += [sp.Integer(k), sp.Integer(-k)]
        k += 1
    pts = pts[:alpha - 1]
    AT = sp.zeros(m, alpha)
    G = sp.zeros(alpha, r)
    for j, p in enumerate(pts):
        f = sp.prod([p - q for q in pts if q != p])
        for i in range(m):
            AT[i, j] = p ** i
        for c in range(r):
            G[j, c] = p ** c / f
    AT[m - 1, alpha - 1] = 1
    G[alpha - 1, r - 1] = 1
    BT = sp.Matrix(alpha, alpha, lambda i, j: sp.Symbol("b_%d_%d" % (i, j)))
    eqs = []
    for i in range(m):
        for c in range(r):
            for l in range(alpha):
                eqs.append(sum(AT[i, j] * G[j, c] * BT[j, l] for j in range(alpha)) - (1 if l == i + c else 0))
    sol = sp.solve(eqs, list(BT), dict=True)[0]
    BT = BT.subs(sol).subs({s: 0 for s in BT.free_symbols})
    return AT, G, BT


def check(m, r, AT, G, BT):
    d = sp.Matrix(sp.symbols("d0:%d" % (m + r - 1)))
    g = sp.Matrix(sp.symbols("g0:%d" % r))
    y = AT * (G * g).multiply_elementwise(BT * d)
    for i in range(m):
        assert sp.expand(y[i] - sum(d[i + k] * g[k] for k in range(r))) == 0, (m, r, i)


def c_rows(name, M):
    rows = ["{" + ", ".join("%sf" % sp.N(v, 9) if v != int(v) else "%d.0f" % int(v) for v in M.row(i)) + "}"
            for i in range(M.rows)]
    return "%s[%d][%d] = {%s}" % (name, M.rows, M.cols, ", ".join(rows))


if __name__ == "__main__":
    m, r = int(sys.argv[1]), int(sys.argv[2])
    AT, G, BT = matrices(m, r)
    check(m, r, AT, G, BT)
    print("/* F(%dx%d, %dx%d), checked exactly by scripts/winograd-matrices.py */" % (m, m, r, r))
    for name, M in (("BT", BT), ("G", G), ("AT", AT)):
        print(c_rows(name, M) + ";")
