"""The paper's own numbers (Tables 1–3, 128×128, authors' GPU), for the side columns of our tables.

Keys: (table, method row id, setting, role) → PSNR in dB, where setting is σ (table 1) or the
ratio m/n (tables 2, 3) and role is "faces" or "natural"; seconds per image are keyed
(table, method, setting) (table 1 has one time column: setting None).  Source: arXiv:2209.08452, Tables 1-3.
"""

from __future__ import annotations

_T1 = {  # method: (σ15 faces, σ15 natural, σ25 faces, σ25 natural, seconds)
    "bm3d": (34.4, 34.4, 31.9, 31.8, 1.66),
    "drunet": (35.5, 34.8, 33.2, 32.5, 0.01),
    "dip_1000": (31.6, 30.7, 30.6, 30.1, 21.6),
    "dip_50": (10.1, 10.9, 10.1, 10.9, 1.04),
    "metasiren": (31.4, 30.4, 30.0, 29.0, 0.19),
    "metadip": (32.0, 31.7, 30.7, 30.4, 0.89),
}
_T2 = {  # method: (1/4 faces, 1/4 natural, seconds, 1/8 faces, 1/8 natural, seconds)
    "pnp_bm3d": (26.0, 26.8, 35.3, 27.1, 25.7, 170.5),
    "pnp_drunet": (27.6, 27.2, 0.58, 28.1, 27.7, 1.1),
    "dip_1000": (29.4, 29.2, 24.9, 28.5, 28.3, 23.2),
    "dip_50": (9.84, 10.0, 1.2, 9.83, 10.0, 1.2),
    "metasiren": (26.5, 25.1, 0.53, 23.7, 22.0, 0.73),
    "metadip": (29.0, 28.3, 1.1, 27.2, 26.7, 2.0),
}
_T3 = {
    "pnp_bm3d": (29.4, 29.0, 40.3, 28.4, 27.7, 75.0),
    "pnp_drunet": (29.1, 29.1, 5.7, 30.2, 30.2, 5.8),
    "dip_1000": (29.3, 29.3, 38.5, 28.4, 28.3, 25.2),
    "dip_50": (9.9, 9.9, 1.9, 10.2, 10.1, 1.3),
    "metasiren": (27.4, 25.7, 1.6, 24.7, 22.5, 1.8),
    "metadip": (29.8, 28.7, 1.8, 28.6, 27.6, 2.2),
}


def _build() -> tuple[dict, dict]:
    psnr: dict[tuple, float] = {}
    seconds: dict[tuple, float] = {}
    for m, (a, b, c, d, t) in _T1.items():
        psnr.update(
            {(1, m, 15.0, "faces"): a, (1, m, 15.0, "natural"): b, (1, m, 25.0, "faces"): c, (1, m, 25.0, "natural"): d}
        )
        seconds[(1, m, None)] = t
    for table, rows in ((2, _T2), (3, _T3)):
        for m, (a, b, t4, c, d, t8) in rows.items():
            psnr.update(
                {
                    (table, m, 0.25, "faces"): a,
                    (table, m, 0.25, "natural"): b,
                    (table, m, 0.125, "faces"): c,
                    (table, m, 0.125, "natural"): d,
                }
            )
            seconds.update({(table, m, 0.25): t4, (table, m, 0.125): t8})
    return psnr, seconds


PAPER_PSNR, PAPER_SECONDS = _build()
