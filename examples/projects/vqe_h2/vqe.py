"""A minimal variational quantum eigensolver for the hydrogen molecule.

The STO-3G Hamiltonian of H2, reduced by symmetry to one qubit (|0> = Hartree-Fock determinant,
|1> = the doubly excited one), is H = c_i I + c_z Z + c_x X; ``h2_sto3g.csv`` lists the
coefficients per bond length (regenerate it with ``make_table.py``). The ansatz is
Ry(theta)|0>, whose energy c_i + c_z cos(theta) + c_x sin(theta) is estimated from ``shots``
measurements of Z and of X (``shots=0``: exact expectation values). Shot noise is propagated
into the energy with the ``uncertainties`` package.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from uncertainties import ufloat

TABLE = Path(__file__).with_name("h2_sto3g.csv")


def load_table(path: Path = TABLE) -> dict[float, tuple[float, float, float]]:
    with path.open() as fh:
        return {
            round(float(row["bond_length"]), 2): (float(row["c_i"]), float(row["c_z"]), float(row["c_x"]))
            for row in csv.DictReader(fh)
        }


class H2VQE:
    """VQE for H2 at one bond length (angstrom); call :meth:`energy` with the ansatz angle."""

    def __init__(self, bond_length: float, shots: int = 0, seed: int | None = None) -> None:
        table = load_table()
        key = round(float(bond_length), 2)
        if key not in table or abs(key - float(bond_length)) > 1e-9:
            raise ValueError(
                f"bond length {bond_length} A is not tabulated in {TABLE.name} "
                f"({min(table):.2f}..{max(table):.2f} in steps of 0.05)"
            )
        self.bond_length = key
        self.c_i, self.c_z, self.c_x = table[key]
        self.shots = int(shots)
        self.rng = random.Random(seed)

    @property
    def exact_energy(self) -> float:
        """Full-CI ground-state energy in this basis (hartree)."""
        return self.c_i - math.hypot(self.c_z, self.c_x)

    @property
    def hartree_fock_energy(self) -> float:
        return self.c_i + self.c_z

    def _measure(self, expectation: float):  # -> float | ufloat
        if self.shots <= 0:
            return expectation  # exact: a plain float (a zero-width ufloat makes the library warn)
        p_plus = (1 + expectation) / 2
        hits = sum(self.rng.random() < p_plus for _ in range(self.shots))
        p = hits / self.shots
        return ufloat(2 * p - 1, 2 * math.sqrt(max(p * (1 - p), 1.0 / self.shots) / self.shots))

    def energy(self, theta: float) -> dict[str, float]:
        """Energy of Ry(theta)|0> and its error against the exact value (hartree)."""
        z = self._measure(math.cos(theta))
        x = self._measure(math.sin(theta))
        e = self.c_i + self.c_z * z + self.c_x * x
        value, stderr = getattr(e, "nominal_value", e), getattr(e, "std_dev", 0.0)
        return {
            "energy": value,
            "energy_stderr": stderr,
            "exact_energy": self.exact_energy,
            "hartree_fock_energy": self.hartree_fock_energy,
            "error": value - self.exact_energy,
            "abs_error": abs(value - self.exact_energy),
        }


if __name__ == "__main__":
    vqe = H2VQE(0.75)
    best = min((vqe.energy(t / 100)["energy"], t / 100) for t in range(-100, 101))
    print(f"E_min={best[0]:.6f} at theta={best[1]:.2f}; exact {vqe.exact_energy:.6f}")
