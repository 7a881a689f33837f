"""metadip: meta-learned initialisations for Deep Image Prior.

Library modules (no workflow code here):
``operators`` measurement models, ``networks`` skip net / Fourier features / SIREN,
``metrics`` PSNR / SSIM / NMSE, ``dip`` the vanilla DIP solver, ``images`` image I/O and grids.
"""

__version__ = "0.1.0"
