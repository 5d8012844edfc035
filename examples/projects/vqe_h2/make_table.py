"""Regenerate h2_sto3g.csv: the two-level qubit Hamiltonian of H2 in the STO-3G basis.

Pure Python (Szabo & Ostlund, "Modern Quantum Chemistry", appendix B): contracted Gaussian
integrals for two hydrogen 1s orbitals, the sigma_g / sigma_u molecular orbitals, and the 2x2
configuration-interaction matrix between the Hartree-Fock determinant |g g> and the doubly
excited one |u u> (single excitations do not mix by symmetry). Written as a one-qubit
Hamiltonian H = c_i I + c_z Z + c_x X in hartree, nuclear repulsion included, so the exact
(full CI) energy is c_i - sqrt(c_z^2 + c_x^2) and Hartree-Fock is c_i + c_z.

Usage: python make_table.py > h2_sto3g.csv
"""

from __future__ import annotations

import math

BOHR_PER_ANGSTROM = 1.0 / 0.52917721092
ZETA = 1.24  # Slater exponent of hydrogen 1s in STO-3G
EXPONENTS = [0.109818 * ZETA**2, 0.405771 * ZETA**2, 2.22766 * ZETA**2]
COEFFS = [0.444635, 0.535328, 0.154329]


def boys0(t: float) -> float:
    if t < 1e-10:
        return 1.0 - t / 3.0
    return 0.5 * math.sqrt(math.pi / t) * math.erf(math.sqrt(t))


def primitives(center: float) -> list[tuple[float, float, float]]:
    """(exponent, normalised coefficient, position on the bond axis) of one contracted 1s."""
    return [(a, d * (2 * a / math.pi) ** 0.75, center) for a, d in zip(EXPONENTS, COEFFS, strict=True)]


def overlap(f: list, g: list) -> float:
    return sum(
        ca * cb * (math.pi / (a + b)) ** 1.5 * math.exp(-a * b / (a + b) * (pa - pb) ** 2)
        for a, ca, pa in f
        for b, cb, pb in g
    )


def core(f: list, g: list, nuclei: list[float]) -> float:
    total = 0.0
    for a, ca, pa in f:
        for b, cb, pb in g:
            p, r2 = a + b, (pa - pb) ** 2
            pc = (a * pa + b * pb) / p
            pre = math.exp(-a * b / p * r2)
            kinetic = a * b / p * (3 - 2 * a * b / p * r2) * (math.pi / p) ** 1.5 * pre
            attract = sum(-2 * math.pi / p * pre * boys0(p * (pc - z) ** 2) for z in nuclei)
            total += ca * cb * (kinetic + attract)
    return total


def repulsion(f: list, g: list, h: list, k: list) -> float:
    """(fg|hk) in chemists' notation."""
    total = 0.0
    for a, ca, pa in f:
        for b, cb, pb in g:
            p, pp = a + b, (a * pa + b * pb) / (a + b)
            eab = math.exp(-a * b / p * (pa - pb) ** 2)
            for c, cc, pc in h:
                for d, cd, pd in k:
                    q, pq = c + d, (c * pc + d * pd) / (c + d)
                    ecd = math.exp(-c * d / q * (pc - pd) ** 2)
                    total += (
                        ca
                        * cb
                        * cc
                        * cd
                        * 2
                        * math.pi**2.5
                        / (p * q * math.sqrt(p + q))
                        * eab
                        * ecd
                        * boys0(p * q / (p + q) * (pp - pq) ** 2)
                    )
    return total


def qubit_hamiltonian(bond_angstrom: float) -> tuple[float, float, float]:
    """(c_i, c_z, c_x) of H2 at this bond length."""
    r = bond_angstrom * BOHR_PER_ANGSTROM
    ao = [primitives(0.0), primitives(r)]
    s = overlap(ao[0], ao[1])
    mo = {
        "g": [1 / math.sqrt(2 * (1 + s))] * 2,
        "u": [1 / math.sqrt(2 * (1 - s)), -1 / math.sqrt(2 * (1 - s))],
    }

    def h1(m: str) -> float:
        return sum(mo[m][i] * mo[m][j] * core(ao[i], ao[j], [0.0, r]) for i in range(2) for j in range(2))

    def h2(m1: str, m2: str, m3: str, m4: str) -> float:
        return sum(
            mo[m1][i] * mo[m2][j] * mo[m3][k] * mo[m4][l] * repulsion(ao[i], ao[j], ao[k], ao[l])
            for i in range(2)
            for j in range(2)
            for k in range(2)
            for l in range(2)  # noqa: E741
        )

    e_hf = 2 * h1("g") + h2("g", "g", "g", "g") + 1 / r
    e_dd = 2 * h1("u") + h2("u", "u", "u", "u") + 1 / r
    coupling = h2("g", "u", "g", "u")
    return (e_hf + e_dd) / 2, (e_hf - e_dd) / 2, coupling


if __name__ == "__main__":
    print("bond_length,c_i,c_z,c_x")
    for i in range(6, 51):  # 0.30 .. 2.50 angstrom
        bond = round(0.05 * i, 2)
        ci, cz, cx = qubit_hamiltonian(bond)
        print(f"{bond:.2f},{ci:.10f},{cz:.10f},{cx:.10f}")
