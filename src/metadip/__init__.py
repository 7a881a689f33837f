"""metadip: meta-learned initialisations for Deep Image Prior (arXiv 2209.08452).

The library knows nothing of the workflow; its subpackages are its layers, each importing only
from the ones before it:

- ``core``: image I/O, metrics, seeding, hashing, device, atomic writes, checkpoints, progress
- ``physics``: measurement operators and task settings
- ``models``: DIP and SIREN priors, denoisers (BM3D, DRUNet) and DRUNet training
- ``solvers``: vanilla DIP, PnP-ADMM and its grid search, the common result type
- ``meta``: the MetaDIP inner loop, MAML meta-training, ablation variants
- ``datasets``: sources, curation, curated splits, evaluation sampling
- ``pipeline``: config, evaluation plan, shard evaluation, verified artifacts
- ``reporting``: statistics, tables, claims, figures, the report, the paper's numbers

``cli`` (the ``metadip`` command) and ``demo`` sit on top.
"""

__version__ = "0.1.0"
